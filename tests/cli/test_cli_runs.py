"""``runs``, ``show``, ``logs``, ``resume``, ``cancel``, id prefixes, --debug, --help."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from _waiting import wait_for_heartbeats
from legato.store import open_store

pytestmark = pytest.mark.usefixtures("backend")  # SQLite and PostgreSQL

if TYPE_CHECKING:  # conftest is not importable as a module; only its type is used
    from conftest import Cli


def test_runs_newest_first_with_filters_and_limit(cli: Cli) -> None:
    first = cli.run_json("greet", "-p", "n=1")
    failed = cli.run_json("fragile", expect=1)
    last = cli.run_json("greet", "-p", "n=2")

    listed = cli("runs", "--json")
    assert listed.code == 0, str(listed)
    runs = listed.json()
    assert [r["id"] for r in runs] == [last["id"], failed["id"], first["id"]]
    for run in runs:
        assert {"id", "flow", "state", "parameters", "start_time", "end_time"} <= set(run)
    # Defaults are recorded too, so a run shows everything it ran with.
    assert runs[0]["parameters"] == {"n": 2, "names": None, "label": "x"}

    only_failed = cli("runs", "--json", "--state", "failed").json()
    assert [r["id"] for r in only_failed] == [failed["id"]]
    greet_runs = cli("runs", "--json", "--flow", "greet").json()
    assert [r["id"] for r in greet_runs] == [last["id"], first["id"]]
    assert [r["id"] for r in cli("runs", "--json", "--limit", "1").json()] == [last["id"]]

    table = cli("runs")
    assert table.code == 0, str(table)
    assert last["id"][:8] in table.stdout and "fragile" in table.stdout


def test_runs_rejects_unknown_state_with_the_allowed_list(cli: Cli) -> None:
    result = cli("runs", "--state", "bogus")
    assert result.code == 2, str(result)
    assert "bogus" in result.stderr
    for state in ("scheduled", "running", "completed", "failed", "crashed", "paused"):
        assert state in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_runs_when_there_are_none(cli: Cli) -> None:
    result = cli("runs")
    assert result.code == 0, str(result)
    assert "no flow runs" in result.stdout


def test_show_json_of_failed_run(cli: Cli) -> None:
    run_id = cli.run_json("fragile", "-p", "x=4", expect=1)["id"]
    result = cli("show", run_id, "--json")
    assert result.code == 0, str(result)
    data = result.json()
    assert data["id"] == run_id
    assert data["flow"] == "fragile"
    assert data["state"] == "failed"
    assert data["parameters"] == {"x": 4}
    assert data["error"]["type"] == "ValueError"
    assert data["children"] == []
    by_key = {t["key"]: t for t in data["tasks"]}
    assert set(by_key) == {"step[0]", "check[0]"}, by_key
    for task in data["tasks"]:
        assert {"key", "name", "state", "attempts", "cached", "error", "duration"} <= set(task)
    assert by_key["step[0]"]["state"] == "completed"
    assert by_key["step[0]"]["error"] is None
    check = by_key["check[0]"]
    assert check["state"] == "failed"
    assert check["attempts"] == 1
    assert check["cached"] is False
    assert check["error"]["type"] == "ValueError"
    assert check["error"]["message"] == "not ready: 40"
    assert check["inputs"]["value"] == "40"
    assert len(check["inputs"]["note"]) < 300  # shortened
    assert check["dependencies"][0]["upstream_id"] == by_key["step[0]"]["id"]


def test_show_tree_of_failed_run(cli: Cli) -> None:
    run_id = cli.run_json("fragile", expect=1)["id"]
    result = cli("show", run_id)
    assert result.code == 0, str(result)
    out = result.stdout
    assert run_id in out
    assert "step[0]" in out and "check[0]" in out
    assert "error: ValueError: not ready: 40" in out
    assert "inputs: value=40" in out
    assert "…" in out  # the long note input is shortened


def test_show_subflow_children_and_result(cli: Cli) -> None:
    run_id = cli.run_json("parent")["id"]
    data = cli("show", run_id, "--json").json()
    assert data["result"] == 6
    assert len(data["children"]) == 1
    child = data["children"][0]
    assert child["flow"] == "child" and child["parent_run_id"] == run_id
    tree = cli("show", run_id).stdout
    assert "subflow " + child["id"][:8] in tree
    assert "result: 6" in tree


def test_run_ids_resolve_by_unambiguous_prefix(cli: Cli) -> None:
    # Enough runs that two ids share a first character (17 > 16 hex digits).
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(cli.flows_dir)!r})
        import flows
        for _ in range(17):
            flows.child(1)
        """
    )
    made = subprocess.run(
        [sys.executable, "-c", script], env=cli.env(), capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    ids = [r["id"] for r in cli("runs", "--json", "--limit", "100").json()]
    assert len(ids) == 17
    first_chars = Counter(i[0] for i in ids)
    shared = next(c for c, n in first_chars.items() if n > 1)

    ambiguous = cli("show", shared)
    assert ambiguous.code == 2, str(ambiguous)
    assert "ambiguous" in ambiguous.stderr
    assert len(ambiguous.stderr.strip().splitlines()) == 1

    target = ids[0]
    prefix = next(
        target[:n] for n in range(1, len(target)) if sum(i.startswith(target[:n]) for i in ids) == 1
    )
    shown = cli("show", prefix, "--json")
    assert shown.code == 0, str(shown)
    assert shown.json()["id"] == target

    missing = cli("show", "zzzz-no-such-run")
    assert missing.code == 2, str(missing)
    assert missing.stderr.startswith("error: no flow run matches 'zzzz-no-such-run'")


def test_logs_prints_run_and_task_lines(cli: Cli) -> None:
    run_id = cli.run_json("greet", "-p", "n=2")["id"]
    result = cli("logs", run_id[:12])
    assert result.code == 0, str(result)
    assert "INFO" in result.stdout
    assert "hello from greet" in result.stdout
    assert "[add[0]] adding 2 and 1" in result.stdout
    lines = [json.loads(line) for line in cli("logs", run_id, "--json").stdout.splitlines()]
    assert {line["message"] for line in lines} >= {"hello from greet", "adding 2 and 1"}
    assert all(line["flow_run_id"] == run_id for line in lines)


def test_logs_follow_waits_for_the_run_to_end(cli: Cli) -> None:
    runner = cli.popen("run", f"{cli.flows}:slow", "--json", LEGATO_HEARTBEAT_SECONDS="0.1")
    try:
        run_id = cli.wait_until_running()
        follower = cli.popen("logs", run_id, "--follow")
        assert follower.stdout is not None
        before = ""
        for line in follower.stdout:  # until a line logged while the run still waits
            before += line
            if "waiting for release" in line:
                break
        assert "waiting for release" in before, f"logs --follow ended early: {before!r}"
        (cli.state_dir / "release").touch()
        out, err = follower.communicate(timeout=30)
        assert follower.returncode == 0, err
        # Logged only after the release: the follower was still following then.
        assert "released" in out, "logs --follow ended while the run was running"
    finally:
        (cli.state_dir / "release").touch()
        runner.communicate(timeout=30)
    assert runner.returncode == 0


def test_cancel_running_run_stops_it_at_the_next_task(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The running process learns of the request with its heartbeat; make that quick.
    runner = cli.popen("run", f"{cli.flows}:slow_two", "--json", LEGATO_HEARTBEAT_SECONDS="0.1")
    try:
        run_id = cli.wait_until_running()
        result = cli("cancel", run_id)
        assert result.code == 0, str(result)
        assert "cancellation of run" in result.stdout and "requested" in result.stdout
        monkeypatch.setenv("LEGATO_HOME", str(cli.home))  # the store the CLI uses
        store = open_store()
        try:
            wait_for_heartbeats(store, run_id)  # a whole tick began after the request
        finally:
            store.close()
    finally:
        (cli.state_dir / "release").touch()
        out, err = runner.communicate(timeout=30)
    assert runner.returncode == 1, err
    assert json.loads(out)["state"] == "cancelled"


def test_killed_run_reads_as_crashed_and_resumes(cli: Cli) -> None:
    runner = cli.popen("run", f"{cli.flows}:slow")
    try:
        run_id = cli.wait_until_running()
    finally:
        runner.kill()
        runner.communicate(timeout=30)
    listed = cli("runs", "--json").json()
    assert [(r["id"], r["state"]) for r in listed] == [(run_id, "crashed")]
    (cli.state_dir / "release").touch()
    resumed = cli("resume", run_id, "--json")
    assert resumed.code == 0, str(resumed)
    assert resumed.json()["result"] == "done"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_exits_130_and_says_how_to_resume(cli: Cli) -> None:
    import signal

    runner = cli.popen("run", f"{cli.flows}:slow")
    try:
        run_id = cli.wait_until_running()
        runner.send_signal(signal.SIGINT)
        _, err = runner.communicate(timeout=30)
    finally:
        (cli.state_dir / "release").touch()
        if runner.poll() is None:
            runner.kill()
            runner.communicate(timeout=30)
    assert runner.returncode == 130, err
    assert f"legato resume {run_id}" in err
    assert "Traceback" not in err


def test_resume_failed_run_after_fix_skips_completed_tasks(cli: Cli) -> None:
    run_id = cli.run_json("fragile", expect=1)["id"]
    assert cli.count("step") == 1
    (cli.state_dir / "fixed").touch()
    result = cli("resume", run_id[:10], "--json")
    assert result.code == 0, str(result)
    data = result.json()
    assert data["id"] == run_id
    assert data["state"] == "completed"
    assert data["result"] == 41
    assert cli.count("step") == 1  # replayed from its stored result, not run again


def test_resume_paused_run_with_invalid_then_valid_input(cli: Cli) -> None:
    run_id = cli.run_json("approval_flow", expect=3)["id"]

    bad = cli("resume", run_id, "--input", '{"approved": "maybe"}')
    assert bad.code == 2, str(bad)
    assert bad.stderr.startswith("error: ")
    assert "approved" in bad.stderr and "stays paused" in bad.stderr
    assert cli("show", run_id, "--json").json()["state"] == "paused"

    missing = cli("resume", run_id)
    assert missing.code == 2, str(missing)
    assert cli("show", run_id, "--json").json()["state"] == "paused"

    good = cli("resume", run_id, "--input", '{"approved": true, "note": "ok"}', "--json")
    assert good.code == 0, str(good)
    assert good.json()["result"] == {"approved": True, "note": "ok"}
    assert cli.count("step") == 1


def test_resume_of_completed_run_is_refused(cli: Cli) -> None:
    run_id = cli.run_json("greet")["id"]
    result = cli("resume", run_id)
    assert result.code == 2, str(result)
    assert "already completed" in result.stderr


def test_cancel_paused_run(cli: Cli) -> None:
    run_id = cli.run_json("approval_flow", expect=3)["id"]
    result = cli("cancel", run_id[:8])
    assert result.code == 0, str(result)
    assert result.stdout.strip().startswith(f"run {run_id} cancelled")
    assert cli("show", run_id, "--json").json()["state"] == "cancelled"
    again = cli("cancel", run_id)
    assert again.code == 0, str(again)
    assert "cancelled" in again.stdout


def test_debug_shows_traceback_normal_mode_one_line(cli: Cli) -> None:
    normal = cli("show", "nope")
    assert normal.code == 2
    assert normal.stderr.strip().splitlines() == [
        normal.stderr.strip()
    ] and normal.stderr.startswith("error: ")
    assert "Traceback" not in normal.stderr
    for args in (["--debug", "show", "nope"], ["show", "nope", "--debug"]):
        debug = cli(*args)
        assert debug.code == 2, str(debug)
        assert "Traceback (most recent call last)" in debug.stderr
        assert "RunNotFoundError" in debug.stderr
        assert debug.stderr.strip().splitlines()[-1].startswith("error: ")


@pytest.mark.parametrize("command", ["run", "runs", "show", "logs", "resume", "cancel"])
def test_every_command_has_help_with_an_example(cli: Cli, command: str) -> None:
    result = cli(command, "--help")
    assert result.code == 0, str(result)
    assert "Examples:" in result.stdout
    assert f"legato {command}" in result.stdout


def test_top_level_help_and_unknown_command(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0
    for command in ("run", "runs", "show", "logs", "resume", "cancel"):
        assert command in result.stdout
    unknown = cli("frobnicate")
    assert unknown.code == 2
    assert unknown.stderr.startswith("error: No such command 'frobnicate'")


def test_runs_state_crashed_finds_a_dead_run_nobody_looked_at_yet(cli: Cli) -> None:
    runner = cli.popen("run", f"{cli.flows}:slow")
    try:
        cli.wait_until_running()  # while it is alive, reading it changes nothing
    finally:
        runner.kill()
        runner.communicate(timeout=30)
    crashed = cli("runs", "--json", "--state", "crashed").json()
    assert [r["state"] for r in crashed] == ["crashed"]
