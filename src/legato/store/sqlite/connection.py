"""The SQLite connection behind a store: setup, transactions, busy retries, fork safety.

One connection per store object, shared by threads under a lock: SQLite
allows a single writer per file anyway, and one connection keeps every
prepared statement warm. Writes run in ``BEGIN IMMEDIATE`` transactions, which
take the write lock up front; a deferred transaction that reads first and then
writes can fail with SQLITE_BUSY without waiting when another process commits
in between. Busy errors are retried (SQLite's busy timeout, then our own
jittered back-off) so that "database is locked" never reaches a user.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from legato.errors import StoreError

T = TypeVar("T")

DEFAULT_LOCK_TIMEOUT = 60.0
_MAX_BUSY_TIMEOUT = 5.0
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_getpid = os.getpid

# Connections inherited through a fork that bypassed os.register_at_fork: parked
# here and never closed, because closing them in the child would release POSIX
# locks (and may checkpoint the WAL) on behalf of the parent.
_inherited: list[sqlite3.Connection] = []
_open: weakref.WeakSet[Database] = weakref.WeakSet()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return True
    message = str(exc).lower()
    return "locked" in message or "busy" in message


def _synchronous_setting() -> str:
    # NORMAL in WAL mode survives a crash of any process (what legato promises)
    # but an OS crash or power loss can lose the last few commits; FULL syncs
    # the WAL at every commit for those who need that too, at a large cost.
    raw = os.environ.get("LEGATO_SQLITE_SYNCHRONOUS", "NORMAL").strip().upper()
    if raw not in ("NORMAL", "FULL", "EXTRA"):
        raise StoreError(
            f"LEGATO_SQLITE_SYNCHRONOUS={raw!r} is not supported; use NORMAL (default) or FULL"
        )
    return raw


class Database:
    """A lazily (re)opened connection with ``read`` and ``write`` helpers."""

    def __init__(self, path: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self._busy_timeout = min(_MAX_BUSY_TIMEOUT, lock_timeout)
        self._synchronous = _synchronous_setting()
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._closed = False
        self._conn: sqlite3.Connection | None = None
        self._conn = self._connect()
        _open.add(self)

    # --- connections -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # shared by threads, serialized by self._lock
                cached_statements=256,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from exc
        try:
            self._retry_busy(lambda: self._configure(conn))
        except BaseException:
            conn.close()
            raise
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(
                f"cannot switch the SQLite store {self.path} to WAL mode (got {mode!r}); "
                f"put it on a local file system, e.g. set LEGATO_HOME to a local folder"
            )
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=OFF")  # integrity is kept by the store's own code
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-16384")  # 16 MB, allocated as used
        # A checkpoint syncs the WAL and the database file; doing it every
        # ~40 MB of WAL instead of SQLite's default 4 MB roughly halves the
        # amortized cost of a small commit (measured with benchmarks/store_micro.py).
        conn.execute("PRAGMA wal_autocheckpoint=10000")
        conn.execute("PRAGMA journal_size_limit=67108864")  # shrink the WAL back to 64 MB

    def _adopt_fork(self) -> None:
        # A fork the at-fork hooks did not see (a C extension's fork): never
        # touch the parent's connection or a lock some vanished thread may hold.
        if self._conn is not None:
            _inherited.append(self._conn)
        self._conn = None
        self._lock = threading.RLock()
        self._pid = os.getpid()

    def _reconnect(self) -> sqlite3.Connection:
        """Open the connection again after a fork (called under the lock)."""
        if self._closed:
            raise StoreError(f"the SQLite store {self.path} was closed; open a new one")
        conn = self._conn = self._connect()
        return conn

    def close(self) -> None:
        _open.discard(self)
        if self._pid != os.getpid():
            self._conn = None
            self._closed = True
            return
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    # --- fork hooks --------------------------------------------------------

    def _before_fork(self) -> None:
        # Close (under the lock, so no transaction is open) before forking:
        # SQLite keeps per-process lock bookkeeping for open files, and a child
        # would inherit it in a state that does not match the locks it holds.
        self._lock.acquire()
        if self._pid != os.getpid():
            return  # inherited from an earlier fork; _run() parks it
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    def _after_fork_in_parent(self) -> None:
        self._lock.release()  # reopened lazily on next use

    def _after_fork_in_child(self) -> None:
        self._lock = threading.RLock()
        self._pid = os.getpid()

    # --- running statements ------------------------------------------------

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` outside an explicit transaction (each statement reads a snapshot)."""
        return self._run(fn, False)

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a BEGIN IMMEDIATE transaction; it is rolled back if ``fn`` raises."""
        return self._run(fn, True)

    def write_one(self, sql: str, params: tuple[Any, ...]) -> int:
        """Run one writing statement as its own transaction; returns rows changed.

        A single statement is atomic on its own, and skipping the explicit
        BEGIN IMMEDIATE / COMMIT saves two round trips on the hottest write (a
        task run). If another process commits between this statement's read and
        its write, SQLite reports busy, and the retry below runs it again. The
        first try runs straight on the open connection; a busy report there adds
        at most one busy timeout to the wait before `lock_timeout` is counted.
        """
        if self._pid == _getpid():
            with self._lock:
                conn = self._conn
                if conn is not None:
                    try:
                        return conn.execute(sql, params).rowcount
                    except sqlite3.Error:
                        # Not written (one statement is atomic): the general path
                        # below runs it again, waiting out a busy lock and
                        # reporting any other error as a StoreError.
                        pass
        return self._run(lambda conn: conn.execute(sql, params).rowcount, False)

    def fetchone(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self._run(lambda conn: conn.execute(sql, params).fetchone(), False)

    def fetchall(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return self._run(lambda conn: conn.execute(sql, params).fetchall(), False)

    def _run(self, fn: Callable[[sqlite3.Connection], T], write: bool) -> T:
        if self._pid != _getpid():
            self._adopt_fork()
        first_busy: float | None = None
        delay = 0.002
        while True:
            with self._lock:
                try:
                    conn = self._conn or self._reconnect()
                    if not write:
                        return fn(conn)
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        result = fn(conn)
                        conn.execute("COMMIT")
                    except BaseException:
                        if conn.in_transaction:
                            try:
                                conn.execute("ROLLBACK")
                            except sqlite3.Error:
                                pass
                        raise
                    return result
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc):
                        raise StoreError(f"SQLite store {self.path}: {exc}") from exc
                    busy = exc
                except sqlite3.Error as exc:
                    raise StoreError(f"SQLite store {self.path}: {exc}") from exc
            first_busy, delay = self._back_off(first_busy, delay, busy)

    def _retry_busy(self, fn: Callable[[], T]) -> T:
        first_busy: float | None = None
        delay = 0.002
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise StoreError(f"SQLite store {self.path}: {exc}") from exc
                busy = exc
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path}: {exc}") from exc
            first_busy, delay = self._back_off(first_busy, delay, busy)

    def _back_off(
        self, first_busy: float | None, delay: float, busy: sqlite3.OperationalError
    ) -> tuple[float, float]:
        # SQLite already waited up to busy_timeout before reporting busy; keep
        # trying with jittered sleeps (its own handler is not fair between
        # processes) until the lock timeout has passed in total.
        now = time.monotonic()
        if first_busy is None:
            first_busy = now
        if now - first_busy + self._busy_timeout >= self.lock_timeout:
            raise StoreError(
                f"the SQLite store {self.path} stayed locked for {self.lock_timeout:g}s: "
                f"another process holds its write lock too long; find and stop it, "
                f"or retry later"
            ) from busy
        time.sleep(delay * (0.5 + random.random()))
        return first_busy, min(delay * 2, 0.25)


_forking: list[Database] = []


def _before_fork() -> None:
    _forking[:] = sorted(_open, key=id)  # a fixed order, the same in both hooks
    for db in _forking:
        db._before_fork()


def _after_fork_in_parent() -> None:
    for db in reversed(_forking):
        db._after_fork_in_parent()
    _forking.clear()


def _after_fork_in_child() -> None:
    for db in _forking:
        db._after_fork_in_child()
    _forking.clear()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
