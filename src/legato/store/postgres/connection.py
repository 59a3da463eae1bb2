"""The connections behind a PostgreSQL store: a psycopg pool, errors, forks.

Every store call borrows a connection from a ``psycopg_pool.ConnectionPool``
for one statement and gives it back: connections are in autocommit mode and
each store method is a single statement (see queries.sql), so nothing is
held between calls and threads never wait on each other for more than a
statement. psycopg prepares a statement on a connection after a few uses, so
the hot path costs one Bind/Execute round trip.

Errors: psycopg's exceptions become `StoreError` naming the store by its
display URL, with any password in the message masked (a password can only
come back from libpq's parse errors, but those repeat the URL). Connection
failures drop the original exception (``from None``) since its text is the
unmasked one.

Forks: a child process must never touch the parent's sockets (libpq's
``PQfinish`` would even end the parent's sessions), nor a pool whose worker
threads did not survive the fork. The pid is checked on every call; a child
parks what it inherited and opens its own pool on first use.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from legato.errors import StoreError, StoreUnavailableError
from legato.settings import env_float
from legato.store.postgres.urls import Redactor, display_url, libpq_url

T = TypeVar("T")
Connection = psycopg.Connection[TupleRow]
Cursor = psycopg.Cursor[TupleRow]

DEFAULT_POOL_SIZE = 8
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRY_SECONDS = 30.0
_getpid = os.getpid

# The pool reports each failed reconnection as a warning; with no logging set up
# those would land on stderr through logging's last resort, once per attempt,
# while legato already retries and reports an outage in one line. A user who
# configures logging still gets them.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())

# Pools inherited through a fork: kept referenced (and never closed) so that
# neither their __del__ (which would wait for worker threads that do not exist
# in the child) nor the connections' finalizers run in the child.
_inherited: list[object] = []


class _ConnectionLost(Exception):
    """The connection failed (not the statement): worth retrying on a fresh one."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class PooledConnection(psycopg.Connection[TupleRow]):
    """A pooled connection that keeps one cursor for the store's single-row statements.

    Making a cursor per statement costs about a tenth of a loopback round trip.
    """

    _store_cursor: Cursor | None = None

    def store_cursor(self) -> Cursor:
        cursor = self._store_cursor
        if cursor is None:
            cursor = self._store_cursor = self.cursor()
        return cursor


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class Database:
    """A pool of connections to one PostgreSQL database, opened lazily after a fork."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.display_url = display_url(url)
        self.redact = Redactor(url)
        self.pool_size = pool_size
        self.timeout = timeout
        self.conninfo = self._conninfo(libpq_url(url), timeout)
        self._pid = _getpid()
        self._closed = False
        self._lock = threading.Lock()  # guards opening the pool, never held for a statement
        self._pool: ConnectionPool[PooledConnection] | None = None
        self._local = threading.local()
        self.retry_seconds = env_float("LEGATO_PG_RETRY_SECONDS", DEFAULT_RETRY_SECONDS)

    def _conninfo(self, url: str, timeout: float) -> str:
        try:
            given = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise StoreError(
                f"LEGATO_DATABASE_URL {self.display_url} is not a valid PostgreSQL URL: "
                f"{self.redact(str(exc)).strip()}"
            ) from None
        # Times come back as UTC datetimes (and naive ones are read as UTC):
        # the session time zone decides both.
        options = f"{given.get('options') or ''} -c TimeZone=UTC".strip()
        extra: dict[str, Any] = {"options": options}
        if not given.get("application_name"):
            extra["application_name"] = "legato"
        if not given.get("connect_timeout"):
            extra["connect_timeout"] = max(1, round(min(timeout, 30.0)))
        return make_conninfo(url, **extra)

    # --- connections -------------------------------------------------------------

    def connect(self, *, autocommit: bool = False) -> Connection:
        """A connection of its own (for migrations), outside the pool."""
        try:
            return psycopg.connect(self.conninfo, autocommit=autocommit)
        except psycopg.Error as exc:
            self.connection_failed(exc)

    def connection_failed(self, exc: Exception) -> NoReturn:
        message = self.redact(str(exc)).strip()
        raise StoreError(
            f"cannot connect to the PostgreSQL store {self.display_url}: {message}; check "
            f"LEGATO_DATABASE_URL and that the server is running and reachable"
        ) from None

    def _open_pool(self) -> ConnectionPool[PooledConnection]:
        with self._lock:
            if self._pool is not None:
                return self._pool  # another thread got here first
            if self._closed:
                raise StoreError(
                    f"the PostgreSQL store {self.display_url} was closed; open a new one"
                )
            self._pool = self._new_pool()
            return self._pool

    def _new_pool(self) -> ConnectionPool[PooledConnection]:
        pool: ConnectionPool[PooledConnection] = ConnectionPool(
            self.conninfo,
            connection_class=PooledConnection,
            kwargs={"autocommit": True},
            min_size=1,
            max_size=self.pool_size,
            timeout=self.timeout,
            name="legato",
            num_workers=1,
            open=False,
        )
        pool.open(wait=False)
        return pool

    def start(self) -> None:
        """Open the pool; its first connection is made by a background worker."""
        self._pool_here()

    def _pool_here(self) -> ConnectionPool[PooledConnection]:
        if self._pid != _getpid():
            self._adopt_fork()
        return self._pool or self._open_pool()

    def _adopt_fork(self) -> None:
        if self._pool is not None:
            _inherited.append(self._pool)
        self._pool = None
        self._lock = threading.Lock()  # the parent's may have been held by a thread
        self._pid = _getpid()

    def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if self._pid != _getpid():
            _inherited.append(pool)  # the parent's: leave it alone
            return
        pool.close(timeout=5.0)

    # --- running statements ---------------------------------------------------------

    def _checkout(self, pool: ConnectionPool[PooledConnection], timeout: float) -> PooledConnection:
        # An idle connection has nothing to read: if its socket is readable,
        # the server has closed it (restarted, or ended the session) and sent
        # its farewell. Such a connection is dropped before a statement is
        # sent on it, which costs one poll() instead of a failed call per
        # pooled connection after every server restart.
        for _ in range(self.pool_size):
            conn = pool.getconn(timeout)
            if conn.closed or not _readable(conn.pgconn.socket):
                return conn
            conn.close()
            pool.putconn(conn)  # the pool discards it and opens another
        return pool.getconn(timeout)

    def run(self, fn: Callable[[PooledConnection], T]) -> T:
        """Run ``fn`` on a pooled connection (autocommit: each statement commits).

        A lost connection (server restarted, gone, unreachable) is retried with
        a fresh one, backing off, for ``retry_seconds``; then the call raises
        `StoreUnavailableError`. ``retried`` tells the caller (on this thread)
        whether its last call needed a retry: a write whose commit succeeded but
        whose reply was lost then ran twice, which the store checks where that
        matters. The success path costs one flag store, nothing more.
        """
        local = self._local
        local.retried = False
        started = time.monotonic()
        try:
            return self._run_once(fn, min(self.timeout, self.retry_seconds))
        except _ConnectionLost as lost:
            first = lost
        deadline = started + self.retry_seconds
        delay = 0.05
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StoreUnavailableError(
                    self.display_url, self.retry_seconds, first.reason
                ) from None
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
            local.retried = True
            try:
                return self._run_once(fn, max(0.1, min(self.timeout, deadline - time.monotonic())))
            except _ConnectionLost:
                continue

    @property
    def retried(self) -> bool:
        return bool(getattr(self._local, "retried", False))

    def _run_once(self, fn: Callable[[PooledConnection], T], timeout: float) -> T:
        pool = self._pool_here()
        try:
            conn = self._checkout(pool, timeout)
        except PoolTimeout as exc:
            raise _ConnectionLost(
                f"no connection within {timeout:g}s: {self.redact(str(exc)).strip()}"
            ) from None
        except PoolClosed:
            raise StoreError(
                f"the PostgreSQL store {self.display_url} was closed; open a new one"
            ) from None
        except psycopg.OperationalError as exc:
            raise _ConnectionLost(self.redact(str(exc)).strip()) from None
        try:
            return fn(conn)
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                raise _ConnectionLost(" ".join(self.redact(str(exc)).split())) from None
            raise self.error(exc) from exc
        except UnicodeEncodeError as exc:
            # A lone surrogate (argv decoded with surrogateescape) cannot be sent.
            raise StoreError(
                f"PostgreSQL store {self.display_url}: a value is not valid text: {exc}"
            ) from None
        finally:
            pool.putconn(conn)  # a broken connection is discarded, not reused

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any]) -> int:
        """Run one statement; the number of rows it changed."""
        return self.run(lambda conn: conn.store_cursor().execute(sql, params).rowcount)

    def fetchone(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self.run(lambda conn: conn.store_cursor().execute(sql, params).fetchone())

    def fetchall(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        # A cursor of its own: the kept one would hold a long result until its next use.
        return self.run(lambda conn: conn.execute(sql, params).fetchall())

    def error(self, exc: psycopg.Error) -> StoreError:
        message = " ".join(self.redact(str(exc)).split())
        if isinstance(exc, psycopg.OperationalError):
            return StoreError(
                f"the PostgreSQL store {self.display_url} failed: {message}; check that the "
                f"server is up and reachable"
            )
        return StoreError(f"PostgreSQL store {self.display_url}: {message}")
