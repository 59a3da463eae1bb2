"""``legato backfill`` end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import Cli
from legato.client import Client
from legato.schedules import make_schedule
from legato.store.sqlite import SQLiteStore


@pytest.fixture
def client(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("FLOW_STATE_DIR", str(cli.state_dir))  # the flows file reads it
    store = SQLiteStore(cli.home / "legato.db")
    client = Client(store)
    client.deploy(
        f"{cli.flows}:greet",
        name="daily-add",
        schedules=[make_schedule(cron="0 3 * * *")],
        parameters={"n": 2},
    )
    yield client
    store.close()


def test_backfill_queues_the_slots_and_reports_existing_ones(cli: Cli, client: Client) -> None:
    first = cli("backfill", "daily-add", "--start", "2026-11-01", "--end", "2026-11-03T23:00")
    assert first.code == 0, str(first)
    assert "queued 3 run(s) of 'daily-add'" in first.stdout
    again = cli(
        "backfill", "daily-add", "--start", "2026-11-03", "--end", "2026-11-04T12:00", "--json"
    )
    assert again.code == 0, str(again)
    data = again.json()
    assert [(r["scheduled_time"], r["created"]) for r in data] == [
        ("2026-11-03T03:00:00+00:00", False),
        ("2026-11-04T03:00:00+00:00", True),
    ]
    assert all(r["state"] == "scheduled" and r["work_queue"] == "default" for r in data)
    assert len(client.list_runs(deployment="daily-add")) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "yesterday"], "is not a time"),
        (["--start", "2026-11-05", "--end", "2026-11-01"], "before it starts"),
        (["--start", "-1d", "--concurrency", "0"], "--concurrency"),
    ],
)
def test_bad_backfills_are_one_line_usage_errors(
    cli: Cli, client: Client, args: list[str], message: str
) -> None:
    result = cli("backfill", "daily-add", *args)
    assert result.code == 2, str(result)
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert client.list_runs(deployment="daily-add") == []


def test_backfill_of_an_unknown_deployment(cli: Cli, client: Client) -> None:
    result = cli("backfill", "nope", "--start", "-1d")
    assert result.code == 2 and "no deployment named 'nope'" in result.stderr
