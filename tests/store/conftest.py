"""Store fixtures: every contract test runs once per backend.

A backend is a factory that yields an open, empty store and cleans up after
it. The PostgreSQL one copies a template database per test on the session's
server (see tests/postgres_server.py); when no server can be had it skips,
or fails in CI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from legato.store.base import Store
from legato.store.sqlite import SQLiteStore
from postgres_server import PostgresServer, require_server

StoreFactory = Callable[[Path], AbstractContextManager[Store]]


@contextmanager
def _sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = SQLiteStore(tmp_path / "legato.db")
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _postgres_store(tmp_path: Path) -> Iterator[Store]:
    from legato.store.postgres import PostgresStore

    server: PostgresServer = require_server()
    with server.database() as url:
        store = PostgresStore(url)
        try:
            yield store
        finally:
            store.close()


BACKENDS: dict[str, StoreFactory] = {
    "sqlite": _sqlite_store,
    "postgres": _postgres_store,
}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with BACKENDS[request.param](tmp_path) as opened:
        yield opened
