"""Hostile input to the client: numbers, schedules and store URLs that used to be
stored (or opened) and break later are refused first, naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import legato.schedules
from legato.client import Client
from legato.client.checks import INT32_MAX, deployment_problem
from legato.engine.params import MAX_PARAMETER_DEPTH
from legato.errors import ConfigurationError, ParameterValidationError, ScheduleError
from legato.records import Schedule, utcnow
from legato.schedules import make_schedule
from legato.store import open_store

FLOWS = """
from legato import flow


@flow
def tick(data: object = None) -> int:
    return 1
"""


@pytest.fixture
def target(tmp_path: Path) -> str:
    path = tmp_path / "hostile_flows.py"
    path.write_text(FLOWS)
    return f"{path}:tick"


@pytest.fixture
def client() -> Iterator[Client]:
    client = Client()
    yield client
    client.store.close()


def every_minute(client: Client, target: str) -> None:
    client.deploy(target, name="every-min", schedules=[make_schedule(cron="* * * * *")])


# -- item 12: a backfill's cap is counted lazily ------------------------------------


def test_a_ten_year_every_minute_backfill_is_refused_after_cap_plus_one_slots(
    client: Client, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_minute(client, target)
    real_slots = legato.schedules.slots
    reads: list[int] = []  # slots taken from each iterator of slots

    def counted(schedule: Schedule, after: datetime) -> Iterator[datetime]:
        reads.append(0)
        for slot in real_slots(schedule, after):
            reads[-1] += 1
            yield slot

    monkeypatch.setattr(legato.schedules, "slots", counted)
    start = datetime(2016, 11, 30, tzinfo=UTC)  # ten years of minutes: ~5.3 million slots
    with pytest.raises(ConfigurationError, match="more than 10,000 runs; split it"):
        client.backfill("every-min", start, utcnow())
    # Stopped one past the cap, instead of building every slot first.
    assert max(reads) == 10_001 and sum(reads) < 10_010
    assert client.list_runs(deployment="every-min") == []


def test_a_backfill_within_the_cap_still_queues_every_slot(client: Client, target: str) -> None:
    every_minute(client, target)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    queued = client.backfill("every-min", start, datetime(2026, 1, 1, 0, 4, tzinfo=UTC))
    assert [run.scheduled_time for run, _ in queued] == [
        datetime(2026, 1, 1, 0, minute, tzinfo=UTC) for minute in range(5)
    ]
    with pytest.raises(ConfigurationError, match="more than 4 runs"):
        client.backfill("every-min", start, datetime(2026, 1, 1, 0, 4, tzinfo=UTC), max_runs=4)


# -- item 9 and 11: numbers and schedules are checked before anything is stored -----


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"schedules": [Schedule(interval=1e20)]}, "invalid interval"),
        ({"schedules": [Schedule(interval=1e308)]}, "invalid interval"),
        ({"schedules": [Schedule(cron="0 0 31 2 *")]}, "cannot compute its next due time"),
        ({"schedules": [Schedule(cron="* * * * *", timezone="Nowhere/Else")]}, "time zone"),
        ({"schedules": ["0 * * * *"]}, "not a Schedule"),
        ({"priority": 2**63}, "priority of deployment 'x' must be a whole number"),
        ({"priority": True}, "priority of deployment 'x' must be a whole number"),
        ({"priority": 2**31}, "-2,147,483,648 to 2,147,483,647"),
        ({"concurrency_limit": 2**40}, "concurrency limit of deployment 'x'"),
        ({"concurrency_limit": 0}, "concurrency limit of deployment 'x'"),
        ({"tags": ["ok", "\ud800"]}, "the tags of deployment 'x' holds a lone surrogate"),
        ({"description": "\udfff"}, "the description of deployment 'x' holds a lone"),
        ({"work_queue": "q\ud800"}, "the work queue of deployment 'x' holds a lone"),
    ],
)
def test_bad_deployments_are_refused_before_anything_is_stored(
    client: Client, target: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        client.deploy(target, name="x", **options)
    assert client.deployments() == []


def test_a_huge_int_in_an_error_is_named_not_printed() -> None:
    with pytest.raises(ConfigurationError, match=r"got a 20000-bit number"):
        Client().set_limit("x", 2**19999)


@pytest.mark.parametrize(
    ("slots", "per", "message"),
    [
        (2**63, None, "slots of limit 'x' must be a whole number from 0 to 2,147,483,647"),
        (-1, None, "slots of limit 'x'"),
        (1, float("inf"), r"window \(--per\) of limit 'x'"),
        (1, 1e20, r"window \(--per\) of limit 'x'"),
        (1, float("nan"), r"window \(--per\) of limit 'x'"),
    ],
)
def test_bad_limits_are_refused(
    client: Client, slots: int, per: float | None, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        client.set_limit("x", slots, per_seconds=per)
    assert client.limits() == []
    assert client.set_limit("x", INT32_MAX).slots == INT32_MAX


def test_a_limit_name_that_is_not_text_is_refused(client: Client) -> None:
    with pytest.raises(ConfigurationError, match="the limit name holds a lone surrogate"):
        client.set_limit("db\ud800", 1)
    assert client.limits() == []


def test_bad_counts_are_refused_naming_the_field(client: Client) -> None:
    with pytest.raises(ConfigurationError, match=r"number of runs to list \(limit\)"):
        client.list_runs(limit=10**20)
    with pytest.raises(ConfigurationError, match=r"log id to read after \(after\)"):
        client.read_logs("some-run", after_id=99999999999999999999999)


def test_a_stored_bad_deployment_lists_and_shows_its_problem(client: Client, target: str) -> None:
    client.deploy(target, name="good", schedules=[make_schedule(interval=60)])
    good = client.get_deployment("good")
    # As an older legato stored `--interval 1e20`, straight through the store.
    bad = replace(good, name="big", schedules=(Schedule(interval=1e20),))
    client.store.save_deployment(bad, now=utcnow())
    listed = {d.name: d for d in client.deployments()}
    assert client.next_scheduled_times(listed["big"], 3) == []
    assert len(client.next_scheduled_times(listed["good"], 3)) == 3
    problem = deployment_problem(listed["big"])
    assert problem is not None and "invalid interval 1e+20" in problem
    assert deployment_problem(listed["good"]) is None
    with pytest.raises(ConfigurationError, match="'big' cannot be backfilled: invalid interval"):
        client.backfill("big", datetime(2026, 1, 1, tzinfo=UTC), utcnow())


def test_a_stored_schedule_that_overflows_raises_schedule_error() -> None:
    with pytest.raises(ScheduleError):
        legato.schedules.next_slots(Schedule(interval=1e20), utcnow(), 1)


# -- item 13: parameters that no store can hold --------------------------------------


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("\ud800", "'data' holds a lone surrogate"),
        ({"k\udfff": 1}, "'data' holds a lone surrogate"),
        (nested(MAX_PARAMETER_DEPTH + 1), f"nested more than {MAX_PARAMETER_DEPTH} levels"),
        (nested(5000), f"nested more than {MAX_PARAMETER_DEPTH} levels"),
    ],
    ids=["surrogate", "surrogate-key", "just-too-deep", "far-too-deep"],
)
def test_parameters_no_store_can_hold_are_refused(
    client: Client, target: str, data: Any, message: str
) -> None:
    flow = client.load_flow(target)
    with pytest.raises(ParameterValidationError, match=message):
        client.run_flow(flow, {"data": data})
    with pytest.raises(ParameterValidationError, match=message):
        client.deploy(target, name="x", parameters={"data": data})
    assert client.list_runs() == [] and client.deployments() == []


def test_parameters_at_the_depth_limit_are_fine(client: Client, target: str) -> None:
    flow = client.load_flow(target)
    state = client.run_flow(flow, {"data": nested(MAX_PARAMETER_DEPTH)})
    assert state.is_completed()


# -- item 14: a store URL is a URL or a SQLite file, never a typo ---------------------


@pytest.mark.parametrize("url", ["garbage", "legato", "my-store.txt", "./runs/"])
def test_a_store_location_that_is_neither_url_nor_sqlite_file_is_refused(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=r"sqlite:///path/to/legato\.db, postgresql://"):
        open_store(url)
    assert list(tmp_path.iterdir()) == []  # no file made for a typo


def test_sqlite_paths_and_existing_files_are_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("runs.db", "runs.sqlite", "runs.sqlite3", f"sqlite:///{tmp_path}/other"):
        open_store(url).close()
    open_store("runs.db").close()
    (tmp_path / "runs.db").rename(tmp_path / "legacy-store")
    open_store(str(tmp_path / "legacy-store")).close()  # an existing file, whatever its name


def test_an_unreadable_postgres_url_is_a_configuration_error_without_its_password() -> None:
    with pytest.raises(ConfigurationError, match="cannot be read") as caught:
        open_store("postgresql://user:sekret@[::1/db")
    assert "sekret" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="cannot be read"):
        open_store("postgresql://user:sekret@host:port/db")
