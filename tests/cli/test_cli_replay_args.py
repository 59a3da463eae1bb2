"""`legato resume --on-changed-args`: what replay does when a completed call's
arguments changed since they were recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli


def failed_shifting_run(cli: Cli) -> str:
    data = cli.run_json("shifting", expect=1)
    assert cli.count("step") == 1
    (cli.state_dir / "shift").touch()  # step[0] is now called with 5, not 1
    (cli.state_dir / "fixed").touch()
    return str(data["id"])


def test_changed_arguments_stop_the_resume_naming_the_key(cli: Cli) -> None:
    run_id = failed_shifting_run(cli)
    done = cli("resume", run_id, "--json")
    assert done.code == 1, str(done)
    error = done.json()["error"]
    assert error["type"] == "NonDeterministicFlowError"
    assert "'step[0]'" in error["message"] and "(1,)" in error["message"]
    assert "(5,)" in error["message"]
    assert cli.count("step") == 1  # nothing ran under a wrong key


def test_rerun_runs_the_changed_call_again(cli: Cli) -> None:
    run_id = failed_shifting_run(cli)
    done = cli("resume", run_id, "--on-changed-args", "rerun", "--json")
    assert done.code == 0, str(done)
    assert done.json()["result"] == 50
    assert cli.count("step") == 2


def test_replay_keeps_the_recorded_result(cli: Cli) -> None:
    run_id = failed_shifting_run(cli)
    done = cli("resume", run_id, "--on-changed-args", "replay", "--json")
    assert done.code == 0, str(done)
    assert done.json()["result"] == 10
    assert cli.count("step") == 1


def test_an_unknown_policy_exits_2(cli: Cli) -> None:
    done = cli("resume", "abc", "--on-changed-args", "maybe")
    assert done.code == 2
    assert "--on-changed-args" in done.stderr
