"""File arrival: ``legato.file.arrived`` once per new or changed file, once it is stable.

A `FileTrigger` watches one folder: with ``watchfiles`` (the ``legato[watch]``
extra) for a local folder, or by listing it every ``poll`` seconds (a local
folder, or any fsspec URL such as ``s3://bucket/incoming``). A file fires when
its size and modification time have stayed the same for ``stable_seconds``,
so a file still being written does not. Files there when the trigger starts do
not fire unless ``include_existing``. The event id is derived from the file's
location, size and modification time: a restarted trigger that sees the same
file again stores nothing new (emitting is idempotent by id), and a file that
changes fires again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from legato._event_records import RESOURCE_ID, RESOURCE_NAME, Event
from legato.engine.events import build_event
from legato.errors import ConfigurationError, MissingExtraError

if TYPE_CHECKING:
    from legato.store.base import Store

FILE_ARRIVED = "legato.file.arrived"
_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created", "modified")


@dataclass(frozen=True, slots=True)
class FileState:
    """What the trigger sees of one file: where it is, its size and modification time."""

    location: str  # an absolute path, or a URL
    name: str
    size: int
    mtime: float | None  # seconds since the epoch; None when the file system has none
    version: str  # what identifies this content: size and mtime (or an etag)


def _as_timestamp(value: object) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(value, str):
        try:
            return _as_timestamp(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


class FileTrigger:
    """Emit ``event`` (default ``legato.file.arrived``) once per new or changed file
    in ``path`` whose name matches ``pattern``, once stable for ``stable_seconds``.

    ``path``: a local folder, or with ``poll`` any fsspec URL. ``poll``: list the
    folder every that many seconds instead of watching it (``watchfiles``).
    ``sha256``: put the content's hash in the payload (reads each file).
    ``on_event``: called with each event stored for the first time. Run it with
    `run` (until `stop` or Ctrl-C), or drive it with `start` and `check`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        pattern: str = "*",
        stable_seconds: float = 2.0,
        include_existing: bool = False,
        poll: float | None = None,
        event: str = FILE_ARRIVED,
        sha256: bool = False,
        store: Store | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        raw = os.fspath(path)
        self.is_url = "://" in raw
        if stable_seconds < 0:
            raise ConfigurationError(f"stable_seconds must be 0 or more, not {stable_seconds}")
        if poll is not None and poll <= 0:
            raise ConfigurationError(f"the poll interval must be above 0 seconds, not {poll}")
        if self.is_url and poll is None:
            raise ConfigurationError(
                f"{raw} is a URL: watch it by polling, e.g. --poll 30 (poll=30)"
            )
        self.path = raw if self.is_url else os.path.abspath(os.path.expanduser(raw))
        if not self.is_url and not os.path.isdir(self.path):
            raise ConfigurationError(f"{self.path} is not a folder: give the folder to watch")
        build_event(event, {RESOURCE_ID: "legato.file.check"})  # a bad name fails here
        self._watch: Callable[..., Any] | None = None
        if poll is None:
            try:
                from watchfiles import watch
            except ImportError:
                raise MissingExtraError("watch", "watchfiles", "watching a folder") from None
            self._watch = watch
        self.pattern = pattern
        self.stable_seconds = stable_seconds
        self.include_existing = include_existing
        self.poll = poll
        self.event = event
        self.sha256 = sha256
        self.on_event = on_event
        self._store = store
        self._fs: Any = None
        self._seen: dict[str, str] = {}  # location -> version that fired (or was there)
        self._pending: dict[str, tuple[str, float]] = {}  # location -> (version, since)
        self._started = False
        self._stop = threading.Event()

    @property
    def store(self) -> Store:
        if self._store is None:
            from legato.store import get_default_store

            self._store = get_default_store()
        return self._store

    # --- one look at the folder ----------------------------------------------

    def _filesystem(self) -> Any:
        if self._fs is None:
            try:
                import fsspec
            except ImportError:
                raise MissingExtraError("watch", "fsspec", f"polling {self.path}") from None
            self._fs, self._root = fsspec.core.url_to_fs(self.path)
        return self._fs

    def scan(self) -> dict[str, FileState]:
        """The matching files in the folder now."""
        found: dict[str, FileState] = {}
        if self.is_url:
            fs = self._filesystem()
            for entry in fs.ls(self._root, detail=True):
                if entry.get("type") != "file":
                    continue
                name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
                if not fnmatch.fnmatchcase(name, self.pattern):
                    continue
                mtime = next(
                    (t for k in _MTIME_KEYS if (t := _as_timestamp(entry.get(k))) is not None),
                    None,
                )
                size = int(entry.get("size") or 0)
                tag = entry.get("ETag") or entry.get("etag") or entry.get("md5Hash") or ""
                location = fs.unstrip_protocol(entry["name"])
                found[location] = FileState(location, name, size, mtime, f"{size}:{mtime}:{tag}")
            return found
        with os.scandir(self.path) as entries:
            for entry in entries:
                if not fnmatch.fnmatchcase(entry.name, self.pattern):
                    continue
                try:
                    if not entry.is_file():
                        continue
                    stat = entry.stat()
                except FileNotFoundError:  # removed while we looked
                    continue
                location = os.path.join(self.path, entry.name)
                found[location] = FileState(
                    location,
                    entry.name,
                    stat.st_size,
                    stat.st_mtime,
                    f"{stat.st_size}:{stat.st_mtime_ns}",
                )
        return found

    def start(self) -> None:
        """Take note of the files there now: they do not fire unless include_existing
        (`check` and `run` call it when it was not called before)."""
        if self._started:
            return
        if not self.include_existing:
            self._seen = {loc: state.version for loc, state in self.scan().items()}
        self._started = True

    def check(self) -> list[Event]:
        """Look once: fire for each file stable long enough; returns the events stored
        for the first time (a file that fired before, even in an earlier process, does
        not appear)."""
        self.start()
        now = time.monotonic()
        current = self.scan()
        for gone in [loc for loc in self._seen if loc not in current]:
            del self._seen[gone]
        for gone in [loc for loc in self._pending if loc not in current]:
            del self._pending[gone]
        stored: list[Event] = []
        for location, state in current.items():
            if self._seen.get(location) == state.version:
                continue
            pending = self._pending.get(location)
            if pending is None or pending[0] != state.version:
                pending = (state.version, now)
                self._pending[location] = pending
            if now - pending[1] < self.stable_seconds:
                continue
            event = self._event(state)
            [seq] = self.store.emit_events([event])  # stored before it counts as seen
            del self._pending[location]
            self._seen[location] = state.version
            if seq is not None:
                stored.append(event)
                if self.on_event is not None:
                    self.on_event(event)
        return stored

    def _digest(self, state: FileState) -> str:
        digest = hashlib.sha256()
        opener = self._filesystem().open if self.is_url else open
        with opener(state.location, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def _event(self, state: FileState) -> Event:
        resource_id = f"legato.file.{state.location}"
        key = f"{resource_id}\0{state.version}".encode()
        payload: dict[str, Any] = {
            "path": state.location,
            "name": state.name,
            "size": state.size,
            "mtime": None
            if state.mtime is None
            else datetime.fromtimestamp(state.mtime, UTC).isoformat(),
        }
        if self.sha256:
            payload["sha256"] = self._digest(state)
        return build_event(
            self.event,
            {
                RESOURCE_ID: resource_id,
                RESOURCE_NAME: state.name,
                "path": state.location,
                "name": state.name,
                "size": str(state.size),
            },
            payload=payload,
            id="file-" + hashlib.sha256(key).hexdigest()[:40],
        )

    # --- the loop ------------------------------------------------------------

    def stop(self) -> None:
        """Make `run` return (from another thread)."""
        self._stop.set()

    def _tick(self) -> float:
        return min(1.0, max(0.05, self.stable_seconds / 4 if self.stable_seconds else 0.25))

    def run(self) -> None:
        """Watch until `stop` is called (or Ctrl-C: KeyboardInterrupt reaches the caller)."""
        if self._watch is not None:
            self.start()
            tick_ms = int(self._tick() * 1000)
            for _changes in self._watch(
                self.path,
                watch_filter=None,
                debounce=tick_ms,
                step=50,
                stop_event=self._stop,
                rust_timeout=tick_ms,
                yield_on_timeout=True,
                recursive=False,
            ):
                self.check()
            return
        self.start()
        while not self._stop.wait(self.poll):
            self.check()


def watch_folder(path: str | os.PathLike[str], **options: Any) -> None:
    """Run a `FileTrigger` on ``path`` until Ctrl-C (options: those of FileTrigger)."""
    FileTrigger(path, **options).run()
