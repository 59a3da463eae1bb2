"""`legato export RUN` and `legato test replay`: a run exported to a file replays against
the current code in another place, with exit 0 on a match and 1 with a report otherwise."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli


def test_export_then_replay_in_an_empty_home(cli: Cli) -> None:
    run_id = str(cli.run_json("greet", "-p", "n=2")["id"])
    exported = cli("export", run_id[:8])
    assert exported.code == 0, str(exported)
    data = exported.json()
    assert data["format"] == "legato-run-export" and data["run"]["id"] == run_id
    assert [(t["call_key"], t["task_name"]) for t in data["tasks"]] == [("add[0]", "add")]
    assert "logs" not in data
    path = cli.flows_dir / "run.json"
    assert cli("export", run_id, "--logs", "-o", str(path)).code == 0
    assert any(
        "hello from greet" in line["message"] for line in json.loads(path.read_text())["logs"]
    )

    empty = str(cli.home.parent / "elsewhere")  # no store holds the run here
    same = cli("test", "replay", str(path), f"{cli.flows}:greet", LEGATO_HOME=empty)
    assert same.code == 0, str(same)
    assert "matches the recording" in same.stdout

    changed = cli.flows_dir / "changed.py"
    changed.write_text(
        cli.flows_dir.joinpath("flows.py").read_text().replace("add(n, 1)", "add(n, 2)")
    )
    diverged = cli("test", "replay", str(path), f"{changed}:greet", LEGATO_HOME=empty)
    assert diverged.code == 1, str(diverged)
    assert "arguments" in diverged.stdout and "add[0]" in diverged.stdout
    assert "(2, 1)" in diverged.stdout and "(2, 2)" in diverged.stdout

    by_id = cli("test", "replay", run_id, f"{cli.flows}:greet")
    assert by_id.code == 0, str(by_id)


def test_bad_input_exits_2_with_a_clear_message(cli: Cli) -> None:
    garbage = cli.flows_dir / "garbage.json"
    garbage.write_text("not json at all")
    result = cli("test", "replay", str(garbage), f"{cli.flows}:greet")
    assert result.code == 2, str(result)
    assert "is not JSON" in result.stderr and "legato export" in result.stderr
    old = cli.flows_dir / "old.json"
    old.write_text(json.dumps({"format": "legato-run-export", "version": 0}))
    result = cli("test", "replay", str(old), f"{cli.flows}:greet")
    assert result.code == 2 and "version 0" in result.stderr, str(result)
    result = cli("test", "replay", "feedbeef", f"{cli.flows}:greet")
    assert result.code == 2 and "feedbeef" in result.stderr, str(result)
    result = cli("export", "feedbeef")
    assert result.code == 2 and "feedbeef" in result.stderr, str(result)
