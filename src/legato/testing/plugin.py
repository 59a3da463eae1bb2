"""The pytest plugin of legato (entry point ``pytest11``: loaded by pytest when
legato is installed). It provides the ``legato_store`` fixture: a fresh embedded
SQLite store in the test's ``tmp_path``, made the current store for the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from legato.store.base import Store


@pytest.fixture
def legato_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A fresh SQLite store for this test, used by every flow run in it (and by the
    ``legato`` CLI started from it: ``LEGATO_HOME`` points there)."""
    from legato.store import get_default_store, reset_default_store

    monkeypatch.setenv("LEGATO_HOME", str(tmp_path / "legato-home"))
    monkeypatch.delenv("LEGATO_DATABASE_URL", raising=False)
    reset_default_store()
    try:
        yield get_default_store()
    finally:
        reset_default_store()
