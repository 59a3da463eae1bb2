"""``legato db status | upgrade | prune`` end to end."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import psycopg
import pytest

from legato.store.sqlite.sql import LATEST_VERSION, MIGRATIONS, QUERIES
from postgres_server import require_server

if TYPE_CHECKING:
    from conftest import Cli


def test_status_shows_the_store_and_its_counts(cli: Cli) -> None:
    cli.run_json("greet", "-p", "n=1")
    result = cli("db", "status", "--json")
    assert result.code == 0, str(result)
    data = result.json()
    assert data["backend"] == "sqlite"
    assert data["url"] == f"sqlite:///{cli.home / 'legato.db'}"
    assert data["schema_version"] == data["latest_version"] == LATEST_VERSION
    assert data["row_counts"]["flow_runs"] == 1 and data["row_counts"]["task_runs"] == 1
    assert data["size_bytes"] > 0
    table = cli("db", "status")
    assert table.code == 0 and "flow runs" in table.stdout and "sqlite" in table.stdout


def test_upgrade_applies_pending_migrations_of_an_old_store(cli: Cli) -> None:
    cli.home.mkdir(parents=True)
    conn = sqlite3.connect(cli.home / "legato.db", isolation_level=None)
    for migration in MIGRATIONS[:2]:  # a store written by an older legato
        for statement in migration.statements:
            conn.execute(statement)
        conn.execute(QUERIES["record_migration"], (migration.version, time.time()))
    conn.close()
    result = cli("db", "upgrade", "--json")
    assert result.code == 0, str(result)
    assert result.json()["applied"] == list(range(3, LATEST_VERSION + 1))
    again = cli("db", "upgrade")
    assert again.code == 0 and f"already at version {LATEST_VERSION}" in again.stdout


def test_prune_deletes_old_runs_and_a_dry_run_only_counts(cli: Cli) -> None:
    for n in range(3):
        cli.run_json("greet", "-p", f"n={n}")
    # Age them ten days (setup only: the store keeps times as epoch seconds).
    conn = sqlite3.connect(cli.home / "legato.db", isolation_level=None)
    conn.execute("UPDATE flow_runs SET created = created - 864000, end_time = end_time - 864000")
    conn.close()
    recent = cli.run_json("greet", "-p", "n=9")
    counted = cli("db", "prune", "--older-than", "1d", "--dry-run", "--json")
    assert counted.code == 0, str(counted)
    assert counted.json() == {"dry_run": True, "flow_runs": 3, "task_runs": 3, "logs": 6}
    assert len(cli("runs", "--json").json()) == 4
    done = cli("db", "prune", "--older-than", "1d")
    assert done.code == 0, str(done)
    assert "deleted 3 flow run(s), 3 task run(s)" in done.stdout
    assert [run["id"] for run in cli("runs", "--json").json()] == [recent["id"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "soon"], "is not an age"),
        (["--older-than", "0d"], "is not an age"),
        (["--older-than", "1d", "--state", "running"], "'running' is not one of"),
        (["--older-than", "1d", "--batch-size", "0"], "--batch-size"),
        ([], "Missing option '--older-than'"),
    ],
)
def test_bad_prune_options_are_one_line_usage_errors(
    cli: Cli, args: list[str], message: str
) -> None:
    cli.run_json("greet")
    result = cli("db", "prune", *args)
    assert result.code == 2, str(result)
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert len(cli("runs", "--json").json()) == 1


def test_status_of_a_postgres_store_never_shows_its_password(cli: Cli) -> None:
    url = require_server().password_url
    if url is None:
        pytest.skip("the test server's URL has no password in it")
    password = str(psycopg.conninfo.conninfo_to_dict(url).get("password") or "")
    assert password
    for args in (["db", "status"], ["db", "status", "--json"], ["db", "upgrade"]):
        result = subprocess.run(
            [sys.executable, "-m", "legato", *args],
            env=cli.env(LEGATO_DATABASE_URL=url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert password not in result.stdout + result.stderr
        assert "postgresql://" in result.stdout and "***" in result.stdout
