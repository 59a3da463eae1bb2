"""Shared fixtures: every test gets its own LEGATO_HOME, so its own SQLite file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.store import get_default_store, reset_default_store
from legato.store.base import Store


@pytest.fixture(autouse=True)
def legato_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "legato-home"
    monkeypatch.setenv("LEGATO_HOME", str(home))
    monkeypatch.delenv("LEGATO_DATABASE_URL", raising=False)
    monkeypatch.setenv("LEGATO_LOG_TO_CONSOLE", os.environ.get("LEGATO_LOG_TO_CONSOLE", "1"))
    reset_default_store()
    yield home
    reset_default_store()


@pytest.fixture
def default_store(legato_home: Path) -> Store:
    """The store flows called in this test write to."""
    return get_default_store()
