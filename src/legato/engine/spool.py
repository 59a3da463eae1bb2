"""The spool: runs of wrapped commands recorded while the store was out of reach.

Each is one JSON file under ``LEGATO_SPOOL_DIR`` (default ``LEGATO_HOME/spool``),
written when the command ends. `upload` turns each file into a finished flow run
(with its original times, output lines, host and pid) and deletes it; a file is
claimed by renaming it first, so two uploaders never record it twice.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legato._clock import now as utcnow
from legato.engine.ids import new_id
from legato.records import FlowRun, LogRecord, RunOwner
from legato.states import StateType

if TYPE_CHECKING:
    from legato.store.base import Store


@dataclass
class SpooledRun:
    name: str
    argv: list[str]
    tags: tuple[str, ...]
    started: datetime
    host: str
    pid: int
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (time, stream, text)
    ended: datetime | None = None
    state: str = "CRASHED"
    message: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def begin(cls, name: str, argv: list[str], tags: tuple[str, ...]) -> SpooledRun:
        return cls(name, argv, tags, utcnow(), socket.gethostname(), os.getpid())

    def add_line(self, stream: str, text: str) -> None:
        with self._lock:
            self.lines.append((utcnow().isoformat(), stream, text))

    def finish(self, state: str, message: str | None) -> None:
        self.ended, self.state, self.message = utcnow(), state, message

    def save(self) -> Path:
        from legato.settings import spool_dir

        folder = spool_dir()
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "name": self.name,
            "argv": self.argv,
            "tags": list(self.tags),
            "started": self.started.isoformat(),
            "ended": (self.ended or utcnow()).isoformat(),
            "state": self.state,
            "message": self.message,
            "host": self.host,
            "pid": self.pid,
            "lines": self.lines,
        }
        path = folder / f"{self.started.strftime('%Y%m%dT%H%M%S')}-{new_id()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
        return path


def upload(store: Store) -> list[str]:
    """Record every spooled run in ``store``; returns the ids of the runs created."""
    from legato.settings import spool_dir

    folder = spool_dir()
    if not folder.is_dir():
        return []
    created = []
    for path in sorted(folder.glob("*.json")):
        claimed = path.with_suffix(".uploading")
        try:
            os.rename(path, claimed)
        except FileNotFoundError:
            continue  # another uploader took it
        try:
            created.append(_record(store, json.loads(claimed.read_text())))
        except BaseException:
            os.rename(claimed, path)  # left for the next upload
            raise
        claimed.unlink()
    return created


def _record(store: Store, data: dict[str, Any]) -> str:
    run_id, token = new_id(), new_id()
    started = datetime.fromisoformat(data["started"])
    ended = datetime.fromisoformat(data["ended"])
    run = FlowRun(
        id=run_id,
        flow_name=data["name"],
        name=f"{data['name']}-{run_id[:8]}",
        state=StateType.PENDING,
        parameters={"command": data["argv"]},
        entrypoint=None,
        flow_version=None,
        tags=tuple(data["tags"]),
        created=started,
    )
    store.create_flow_run(run, None)
    owner = RunOwner(token=token, host=data["host"], pid=data["pid"], pid_started=None)
    store.start_flow_run(run_id, owner, from_states=[StateType.PENDING], now=started)
    logs = [
        LogRecord(
            flow_run_id=run_id,
            timestamp=datetime.fromisoformat(at),
            level=logging.INFO if stream == "stdout" else logging.WARNING,
            message=text,
            logger=f"legato.wrap.{stream}",
        )
        for at, stream, text in data["lines"]
    ]
    logs.append(
        LogRecord(
            flow_run_id=run_id,
            timestamp=ended,
            level=logging.INFO,
            message="recorded from the spool: the store was unreachable while it ran",
            logger="legato.wrap",
        )
    )
    store.finish_flow_run(
        run_id,
        token,
        state=StateType[data["state"]],
        now=ended,
        message=data["message"],
        logs=logs,
    )
    return run_id
