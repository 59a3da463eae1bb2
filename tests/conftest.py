"""Shared fixtures: every test gets its own LEGATO_HOME, so its own SQLite file.

A test (or module) that asks for the ``backend`` fixture runs once per store
backend: on SQLite as usual, and on PostgreSQL with ``LEGATO_DATABASE_URL``
pointing at a fresh database of the session's test server (see
tests/postgres_server.py). Use it as
``pytestmark = pytest.mark.usefixtures("backend")``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.store import get_default_store, reset_default_store
from legato.store.base import Store
from postgres_server import require_server, stop_server, unavailable_reason


@pytest.fixture(autouse=True)
def legato_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "legato-home"
    monkeypatch.setenv("LEGATO_HOME", str(home))
    monkeypatch.delenv("LEGATO_DATABASE_URL", raising=False)
    monkeypatch.setenv("LEGATO_LOG_TO_CONSOLE", os.environ.get("LEGATO_LOG_TO_CONSOLE", "1"))
    reset_default_store()
    yield home
    reset_default_store()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, legato_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The store backend this test runs on, through LEGATO_DATABASE_URL."""
    if request.param != "postgres":
        yield request.param
        return
    server = require_server()
    url = server.create_database()
    monkeypatch.setenv("LEGATO_DATABASE_URL", url)
    reset_default_store()
    try:
        yield request.param
    finally:
        reset_default_store()
        server.drop_database(url)


@pytest.fixture
def default_store(request: pytest.FixtureRequest, legato_home: Path) -> Store:
    """The store flows called in this test write to."""
    if "backend" in request.fixturenames:
        request.getfixturevalue("backend")  # point LEGATO_DATABASE_URL first
    return get_default_store()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_server()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reason = unavailable_reason()
    if reason is not None:
        outcome = "FAILED (CI must run them)" if os.environ.get("CI") else "were SKIPPED"
        terminalreporter.write_sep("!", f"PostgreSQL tests {outcome}", red=True, bold=True)
        terminalreporter.write_line(reason)
