"""Store fixtures: every contract test runs once per backend.

A backend is a factory that yields an open, empty store and cleans up after
it; add the PostgreSQL one to BACKENDS and the whole contract suite runs
against it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from legato.store.base import Store
from legato.store.sqlite import SQLiteStore

StoreFactory = Callable[[Path], AbstractContextManager[Store]]


@contextmanager
def _sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = SQLiteStore(tmp_path / "legato.db")
    try:
        yield store
    finally:
        store.close()


BACKENDS: dict[str, StoreFactory] = {
    "sqlite": _sqlite_store,
}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with BACKENDS[request.param](tmp_path) as opened:
        yield opened
