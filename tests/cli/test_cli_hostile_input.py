"""Hostile input on the command line: one ``error:`` line and exit 2, naming the
option, never a raw exception name; nothing stored; a bad stored row is shown,
not a crash."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import Cli
from legato.client import Client
from legato.records import Schedule, utcnow
from legato.store.sqlite import SQLiteStore

RAW_NAMES = ("OverflowError", "RecursionError", "UnicodeEncodeError", "ValueError", "Traceback")
DEEP = '{"names": ' + "[" * 5000 + "]" * 5000 + "}"
JUST_TOO_DEEP = '{"names": ' + "[" * 65 + "]" * 65 + "}"
HUGE = "99999999999999999999999"


def assert_usage_error(result: object, message: str) -> None:
    code, stderr = result.code, result.stderr  # type: ignore[attr-defined]
    assert code == 2, str(result)
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, str(result)
    assert message in stderr, str(result)
    assert not any(name in stderr for name in RAW_NAMES), str(result)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "{flows}:greet", "--name", "big", "--interval", "1e20"], "invalid interval"),
        (["deploy", "{flows}:greet", "--name", "big", "--cron", "0 0 31 2 *"], "cron 0 0 31 2 *"),
        (["deploy", "{flows}:greet", "--name", "big", "--priority", HUGE], "'--priority'"),
        (["deploy", "{flows}:greet", "--name", "b", "--concurrency-limit", HUGE], "'--concurrency"),
        (["runs", "--limit", "99999999999999999999"], "'--limit'"),
        (["limit", "set", "x", HUGE], "'SLOTS'"),
        (["limit", "set", "x", "2", "--per", "1e300"], "'--per'"),
        (["run", "{flows}:greet", "--params", '{"label": "\\ud800"}'], "lone surrogate"),
        (["run", "{flows}:greet", "-p", 'label="\\udfff"'], "lone surrogate"),
        (["run", "{flows}:greet", "--params", DEEP], "nested more than 64 levels"),
        (["run", "{flows}:greet", "--params", JUST_TOO_DEEP], "nested more than 64 levels"),
        (["run", "{flows}:greet", "-p", "names=" + "[" * 5000 + "]" * 5000], "nested more than"),
        (["resume", "abc", "--input", DEEP], "--input"),
        (["resume", "abc", "--input", '{"note": "\\ud800"}'], "lone surrogate"),
        (["trigger", "x", "--at", "+99999999999d"], "further from now than dates go"),
        (["backfill", "x", "--start", "-99999999999w"], "further from now than dates go"),
    ],
)  # fmt: skip
def test_hostile_options_are_one_line_usage_errors(cli: Cli, args: list[str], message: str) -> None:
    result = cli(*(arg.replace("{flows}", cli.flows) for arg in args))
    assert_usage_error(result, message)
    if (cli.home / "legato.db").exists():  # nothing stored
        store = SQLiteStore(cli.home / "legato.db")
        try:
            assert store.list_deployments() == [] and store.list_flow_runs(limit=10) == []
        finally:
            store.close()


def test_a_bad_store_url_is_refused_and_no_file_is_made(cli: Cli) -> None:
    result = cli("runs", LEGATO_DATABASE_URL="garbage")
    assert_usage_error(result, "give sqlite:///path/to/legato.db, postgresql://")
    assert not (cli.flows_dir / "garbage").exists()
    unreadable = cli("runs", LEGATO_DATABASE_URL="postgresql://u:sekret@[::1/db")
    assert_usage_error(unreadable, "cannot be read")
    assert "sekret" not in unreadable.stderr


def test_a_bad_stored_deployment_is_listed_with_its_error(cli: Cli) -> None:
    assert cli("deploy", f"{cli.flows}:greet", "--name", "good", "--interval", "60").code == 0
    store = SQLiteStore(cli.home / "legato.db")
    try:
        good = Client(store).get_deployment("good")
        # What `--interval 1e20` stored before intervals were bounded.
        bad = replace(good, name="big", schedules=(Schedule(interval=1e20),))
        store.save_deployment(bad, now=utcnow())
    finally:
        store.close()
    listed = cli("deployments")
    assert listed.code == 0, str(listed)
    assert "ERROR" in listed.stdout and "deployment 'big' cannot be scheduled" in listed.stderr
    as_json = {d["name"]: d for d in cli("deployments", "--json").json()}
    assert "invalid interval" in as_json["big"]["problem"] and as_json["big"]["next_runs"] == []
    assert as_json["good"]["problem"] is None and as_json["good"]["next_runs"]
    shown = cli("deployment", "show", "big")
    assert shown.code == 0 and "ERROR:      invalid interval 1e+20" in shown.stdout, str(shown)
    assert cli("deployment", "show", "big", "--json").json()["problem"]
    assert_usage_error(cli("backfill", "big", "--start", "-1h"), "cannot be backfilled")
