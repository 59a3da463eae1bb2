"""``legato deploy``, ``deployments``, ``deployment ...``, ``trigger``, ``runs --deployment``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cli

JOBS = """
from legato import flow


@flow
def report(day: str, limit: int = 10) -> str:
    return f"{day}:{limit}"
"""


@pytest.fixture
def jobs(cli: Cli) -> str:
    path = cli.flows_dir / "jobs.py"
    path.write_text(JOBS)
    return f"{path}:report"


def test_deploy_with_a_schedule_and_show_it(cli: Cli, jobs: str) -> None:
    result = cli(
        "deploy", jobs, "--name", "daily", "--cron", "0 2 * * *", "--timezone", "Europe/Paris",
        "-p", "day=today", "--concurrency-limit", "1", "--tag", "etl", "--json",
    )  # fmt: skip
    assert result.code == 0, str(result)
    data = result.json()
    assert data["name"] == "daily" and data["flow"] == "report"
    assert data["entrypoint"] == jobs
    assert data["parameters"] == {"day": "today"}
    assert data["schedules"][0]["cron"] == "0 2 * * *"
    assert data["schedules"][0]["description"] == "cron 0 2 * * * (Europe/Paris)"
    assert data["concurrency_limit"] == 1 and data["tags"] == ["etl"]
    assert len(data["next_runs"]) == 3
    assert all(t.endswith(("T00:00:00+00:00", "T01:00:00+00:00")) for t in data["next_runs"])

    listed = cli("deployments", "--json")
    assert [d["name"] for d in listed.json()] == ["daily"]
    table = cli("deployments")
    assert "daily" in table.stdout and "cron 0 2 * * *" in table.stdout
    shown = cli("deployment", "show", "daily", "--json")
    assert shown.code == 0 and len(shown.json()["next_runs"]) == 5 and shown.json()["runs"] == []
    plain = cli("deployment", "show", "daily")
    assert "next runs:" in plain.stdout and "report" in plain.stdout


def test_deploying_again_updates_and_pause_resume_delete(cli: Cli, jobs: str) -> None:
    assert cli("deploy", jobs, "--name", "d", "--interval", "60", "-p", "day=x").code == 0
    again = cli("deploy", jobs, "--name", "d", "--interval", "120", "-p", "day=y", "--json")
    assert again.code == 0 and again.json()["parameters"] == {"day": "y"}
    assert again.json()["schedules"][0]["interval"] == 120
    paused = cli("deployment", "pause", "d", "--json")
    assert paused.code == 0 and paused.json()["paused"] is True
    resumed = cli("deployment", "resume", "d")
    assert resumed.code == 0 and "resumed 'd'" in resumed.stdout
    deleted = cli("deployment", "delete", "d", "--json")
    assert deleted.json() == {"name": "d", "deleted": True}
    assert cli("deployments", "--json").json() == []


def test_trigger_queues_a_run_with_checked_parameters(cli: Cli, jobs: str) -> None:
    assert cli("deploy", jobs, "--name", "manual").code == 0  # no schedule: day comes later
    bad = cli("trigger", "manual", "-p", "limit=lots")
    assert bad.code == 2 and "'day' is required" in bad.stderr
    assert cli("runs", "--json").json() == []  # nothing queued
    queued = cli("trigger", "manual", "-p", "day=2026-11-21", "--at", "+1h", "--json")
    assert queued.code == 0, str(queued)
    run = queued.json()
    assert run["state"] == "scheduled" and run["deployment"] == "manual"
    assert run["parameters"] == {"day": "2026-11-21"}
    due = datetime.fromisoformat(run["scheduled_time"])
    assert timedelta(minutes=59) < due - datetime.now(UTC) <= timedelta(hours=1)
    plain = cli("trigger", "manual", "-p", "day=d2")
    assert plain.code == 0 and len(plain.stdout.strip()) == 32  # just the id
    by_deployment = cli("runs", "--deployment", "manual", "--json").json()
    assert {r["id"] for r in by_deployment} == {run["id"], plain.stdout.strip()}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "x", "--cron", "every day"], "invalid cron expression"),
        (["--name", "x", "--interval", "60"], "'day' is required"),
        (["--name", "x", "--timezone", "Mars/Base", "--cron", "0 * * * *", "-p", "day=d"],
         "unknown time zone"),
        (["--name", "bad name!"], "invalid deployment name"),
        (["--name", "x", "-p", "nope=1"], "unknown parameter 'nope'"),
    ],
)  # fmt: skip
def test_bad_deploys_are_one_line_errors_and_store_nothing(
    cli: Cli, jobs: str, args: list[str], message: str
) -> None:
    result = cli("deploy", jobs, *args)
    assert result.code == 2, str(result)
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert cli("deployments", "--json").json() == []


def test_unknown_deployments_and_bad_times(cli: Cli, jobs: str) -> None:
    for args in (
        ["trigger", "nope"],
        ["deployment", "show", "nope"],
        ["deployment", "pause", "nope"],
    ):
        result = cli(*args)
        assert result.code == 2 and "no deployment named 'nope'" in result.stderr
    assert cli("deploy", jobs, "--name", "m").code == 0
    late = cli("trigger", "m", "-p", "day=x", "--at", "tomorrow")
    assert late.code == 2 and "is not a time" in late.stderr


def test_deploy_all_reads_the_project_file(cli: Cli, jobs: str) -> None:
    (cli.flows_dir / "legato.yaml").write_text(
        "deployments:\n"
        "  - {name: nightly, entrypoint: jobs.py:report, cron: '0 3 * * *',"
        " parameters: {day: today}}\n"
        "  - {name: manual, entrypoint: jobs.py:report}\n"
    )
    result = cli("deploy", "--all", "--json")
    assert result.code == 0, str(result)
    assert [d["name"] for d in result.json()] == ["nightly", "manual"]
    assert result.json()[0]["entrypoint"] == jobs
    broken = cli("deploy", "--all", "--file", "missing.yaml")
    assert broken.code == 2 and "cannot read" in broken.stderr
