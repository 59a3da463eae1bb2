"""Fixtures for engine tests (helpers live in _engine_support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _engine_support import Journal


@pytest.fixture(autouse=True)
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Journal:
    """A journal whose path module-level tasks find in ``$LEGATO_TEST_JOURNAL``."""
    path = tmp_path / "journal.txt"
    monkeypatch.setenv("LEGATO_TEST_JOURNAL", str(path))
    return Journal(path)


@pytest.fixture(autouse=True)
def every_backend(backend: str) -> str:
    """Every engine test runs on SQLite and on PostgreSQL (see tests/conftest.py)."""
    return backend
