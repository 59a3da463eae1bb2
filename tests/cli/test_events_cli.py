"""``legato event emit`` and ``legato events`` (list, filter, follow), and
``legato db prune`` deleting old events, through the real CLI."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cli

pytestmark = pytest.mark.usefixtures("backend")
RID = "legato.resource.id"


def test_emit_then_list_filter_and_print_json_lines(cli: Cli) -> None:
    first = cli(
        "event",
        "emit",
        "warehouse.table.refreshed",
        "--resource",
        f"{RID}=warehouse.table.orders",
        "--resource",
        "legato.resource.name=orders",
        "--related",
        f"upstream:{RID}=etl.load,legato.resource.name=load",
        "--payload",
        '{"rows": 1200}',
        "--id",
        "refresh-1",
    )
    assert first.code == 0, str(first)
    assert first.stdout == "refresh-1\n"
    # The same id again stores nothing: one event.
    assert (
        cli("event", "emit", "other.name", "--resource", f"{RID}=x", "--id", "refresh-1").code == 0
    )
    second = cli("event", "emit", "warehouse.table.dropped", "--resource", f"{RID}=warehouse.x")
    assert second.code == 0, str(second)
    new_id = second.stdout.strip()

    lines = cli("events", "--json").stdout.splitlines()
    events = [json.loads(line) for line in lines]
    names = [e["event"] for e in events]
    # The latest, oldest first; the flow-run-free store holds only these two.
    assert names == ["warehouse.table.refreshed", "warehouse.table.dropped"]
    assert events[0]["id"] == "refresh-1"
    assert events[0]["resource"] == {
        RID: "warehouse.table.orders",
        "legato.resource.name": "orders",
    }
    assert events[0]["related"] == [
        {RID: "etl.load", "legato.resource.name": "load", "legato.resource.role": "upstream"}
    ]
    assert events[0]["payload"] == {"rows": 1200}
    assert events[1]["id"] == new_id

    by_related = cli("events", "--resource", "etl.load", "--json").stdout.splitlines()
    assert [json.loads(line)["id"] for line in by_related] == ["refresh-1"]
    by_name = cli("events", "--name", "warehouse.table.d*", "--json").stdout.splitlines()
    assert [json.loads(line)["id"] for line in by_name] == [new_id]
    assert cli("events", "--limit", "1", "--json").stdout.count("\n") == 1
    assert cli("events", "--since", "1h", "--json").stdout.count("\n") == 2

    table = cli("events").stdout.splitlines()
    assert table[0].split() == ["TIME", "EVENT", "RESOURCE", "PAYLOAD"]
    assert "warehouse.table.refreshed" in table[1] and "warehouse.table.orders" in table[1]
    assert '{"rows": 1200}' in table[1]
    assert "no events" in cli("events", "--name", "nothing.here").stdout


def test_control_characters_of_a_payload_are_shown_escaped(cli: Cli) -> None:
    assert cli("event", "emit", "x", "--resource", f"{RID}=r\x1b[31m").code == 0
    shown = cli("events").stdout
    assert "\x1b" not in shown
    assert "r\\x1b[31m" in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resource", "no-equals-sign"], "expected KEY=VALUE"),
        (["--resource", "=x"], "expected KEY=VALUE"),
        (["--resource", f"{RID}=a", "--resource", f"{RID}=b"], "given twice"),
        (["--resource", "a=b"], f'needs a "{RID}" label'),
        (["--resource", f"{RID}=a", "--related", "upstream"], "expected ROLE:KEY=VALUE"),
        (["--resource", f"{RID}=a", "--related", "up:name"], "expected KEY=VALUE"),
        (["--resource", f"{RID}=a", "--payload", "{nope"], "--payload"),
        (["--resource", f"{RID}=a", "--payload", "[1]"], "expected a JSON object"),
    ],
)
def test_bad_emit_input_is_a_one_line_usage_error(cli: Cli, args: list[str], message: str) -> None:
    result = cli("event", "emit", "thing.happened", *args)
    assert result.code == 2, str(result)
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_bad_list_options_are_usage_errors(cli: Cli) -> None:
    since = cli("events", "--since", "yesterday")
    assert since.code == 2 and "'yesterday' is not an age" in since.stderr
    pattern = cli("events", "--name", "a*b")
    assert pattern.code == 2 and "prefix ending in *" in pattern.stderr


def test_follow_prints_new_events_until_ctrl_c(cli: Cli) -> None:
    assert cli("event", "emit", "before.follow", "--resource", f"{RID}=r", "--id", "old").code == 0
    follower = cli.popen("events", "--follow", "--json", "--name", "wanted.*")
    try:
        assert follower.stdout is not None
        # Emitted after the follower started: other names are filtered out.
        assert cli("event", "emit", "unwanted.one", "--resource", f"{RID}=r").code == 0
        emitted = []
        for n in range(3):
            result = cli("event", "emit", f"wanted.n{n}", "--resource", f"{RID}=r")
            assert result.code == 0, str(result)
            emitted.append(result.stdout.strip())
        seen = [json.loads(follower.stdout.readline())["id"] for _ in emitted]
        assert seen == emitted
    finally:
        follower.send_signal(signal.SIGINT)
        _, stderr = follower.communicate(timeout=30)
    assert follower.returncode == 0, stderr


def test_db_prune_deletes_events_older_than_the_given_age(cli: Cli) -> None:
    old = cli("event", "emit", "old.one", "--resource", f"{RID}=r")
    assert old.code == 0, str(old)
    received = datetime.fromisoformat(json.loads(cli("events", "--json").stdout)["received"])
    # Prune once the event is more than 0.5 s old.
    while datetime.now(UTC) - received <= timedelta(seconds=0.6):
        time.sleep(0.05)
    done = cli("db", "prune", "--older-than", "30d", "--events-older-than", "0.5s", "--json")
    assert done.code == 0, str(done)
    assert done.json()["events"] == 1
    assert cli("events", "--json").stdout == ""
    # The default age (LEGATO_EVENT_RETENTION, 7d) keeps a new event; a dry run prunes none.
    assert cli("event", "emit", "new.one", "--resource", f"{RID}=r").code == 0
    kept = cli("db", "prune", "--older-than", "30d")
    assert "deleted 0 event(s) received more than 7d ago" in kept.stdout
    dry = cli("db", "prune", "--older-than", "30d", "--dry-run", "--json")
    assert "events" not in dry.json()
    assert cli("events", "--json").stdout.count("\n") == 1
    bad = cli("db", "prune", "--older-than", "30d", LEGATO_EVENT_RETENTION="soon")
    assert bad.code == 2 and "LEGATO_EVENT_RETENTION='soon' is not an age" in bad.stderr
    age = cli("db", "prune", "--older-than", "30d", "--events-older-than", "x")
    assert age.code == 2 and "'--events-older-than'" in age.stderr
