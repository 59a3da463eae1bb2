"""``legato run`` end to end: exit codes, JSON output, parameters, bad targets, TTY."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import pytest

pytestmark = pytest.mark.usefixtures("backend")  # SQLite and PostgreSQL

if TYPE_CHECKING:  # conftest is not importable as a module; only its type is used
    from conftest import Cli


def test_run_completed_json_is_the_only_stdout(cli: Cli) -> None:
    result = cli("run", f"{cli.flows}:greet", "-p", "n=3", "--json")
    assert result.code == 0, str(result)
    data = result.json()  # fails if the flow's print or a log line reached stdout
    assert data["state"] == "completed"
    assert data["flow"] == "greet"
    assert len(data["id"]) >= 8
    assert data["result"] == {"n": 3, "names": None, "label": "x", "total": 4}
    assert data["parameters"]["n"] == 3
    assert data["error"] is None
    assert data["start_time"].endswith("+00:00") and data["end_time"].endswith("+00:00")
    assert data["task_counts"] == {"completed": 1}
    # What would have polluted stdout went to stderr instead.
    assert "noise on stdout" in result.stderr


def test_run_plain_output_when_piped(cli: Cli) -> None:
    result = cli("run", f"{cli.flows}:greet")
    assert result.code == 0, str(result)
    run_id = cli.run_json("greet")["id"]  # a second run, to learn the id format
    assert len(run_id) > 8
    lines = result.stdout.splitlines()
    assert lines[0].startswith("run ") and "started (flow greet)" in lines[0]
    assert any(line.startswith("state:") and "completed" in line for line in lines)
    assert any(line.startswith("tasks:") and "1 completed" in line for line in lines)
    assert "\x1b[" not in result.stdout  # no terminal escapes in a pipe


def test_params_json_then_p_overrides(cli: Cli) -> None:
    data = cli.run_json(
        "greet",
        "--params",
        '{"n": 1, "label": "base", "names": ["z"]}',
        "-p",
        "n=5",
        "-p",
        'names=["a", "b"]',
    )
    assert data["result"] == {"n": 5, "names": ["a", "b"], "label": "base", "total": 6}
    assert data["parameters"] == {"n": 5, "names": ["a", "b"], "label": "base"}


def test_p_value_that_looks_like_json_stays_text_for_str_parameter(cli: Cli) -> None:
    data = cli.run_json("greet", "-p", "label=1.10", "-p", "names=[]")
    assert data["result"]["label"] == "1.10"
    assert data["result"]["names"] == []


def test_invalid_parameter_exits_2_names_it_and_records_nothing(cli: Cli) -> None:
    result = cli("run", f"{cli.flows}:greet", "-p", "n=abc")
    assert result.code == 2, str(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "'n'" in lines[0] or " n" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    listed = cli("runs", "--json")
    assert listed.code == 0, str(listed)
    assert listed.json() == []


def test_unknown_parameter_exits_2(cli: Cli) -> None:
    result = cli("run", f"{cli.flows}:greet", "-p", "bogus=1")
    assert result.code == 2, str(result)
    assert "bogus" in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--params", "[1, 2]"], "JSON object"),
        (["--params", "{not json"], "not valid JSON"),
        (["-p", "novalue"], "NAME=VALUE"),
    ],
)
def test_malformed_parameter_options_exit_2(cli: Cli, args: list[str], needle: str) -> None:
    result = cli("run", f"{cli.flows}:greet", *args)
    assert result.code == 2, str(result)
    assert result.stderr.startswith("error: ")
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("missing.py:greet", "does not exist"),
        ("{flows}:nope", "nope"),
        ("{flows}:not_a_flow", "not a flow"),
        ("{flows}:plain_function", "not a flow"),
        ("no_colon_here", "path/to/file.py:flow_function"),
        ("no_such_package_xyz.mod:fn", "no_such_package_xyz"),
    ],
)
def test_bad_target_exits_2_with_one_line(cli: Cli, target: str, needle: str) -> None:
    result = cli("run", target.format(flows=cli.flows))
    assert result.code == 2, str(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr


def test_failed_run_exits_1(cli: Cli) -> None:
    data = cli.run_json("fragile", expect=1)
    assert data["state"] == "failed"
    assert data["error"]["type"] == "ValueError"
    assert "not ready: 40" in data["error"]["message"]
    assert "result" not in data
    plain = cli("run", f"{cli.flows}:fragile")
    assert plain.code == 1, str(plain)
    assert "ValueError: not ready: 40" in plain.stdout
    assert "legato resume " in plain.stdout


def test_paused_run_exits_3_and_says_how_to_resume(cli: Cli) -> None:
    data = cli.run_json("approval_flow", expect=3)
    assert data["state"] == "paused"
    assert data["pause"]["key"] == "approval"
    assert data["pause"]["input_model"].endswith("Approval")
    assert "approved" in data["pause"]["input_schema"]["properties"]
    plain = cli("run", f"{cli.flows}:approval_flow")
    assert plain.code == 3, str(plain)
    assert "legato resume " in plain.stdout
    assert """--input '{"approved": true}'""" in plain.stdout


def test_result_that_is_not_json_is_left_out(cli: Cli) -> None:
    data = cli.run_json("opaque")
    assert data["state"] == "completed"
    assert "result" not in data


def test_run_by_module_target(cli: Cli) -> None:
    result = cli("run", "flows:greet", "--json", PYTHONPATH=str(cli.flows_dir))
    assert result.code == 0, str(result)
    assert result.json()["flow"] == "greet"


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_terminal_shows_progress_and_summary(cli: Cli) -> None:
    import pty
    import select
    import subprocess

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "legato", "run", f"{cli.flows}:approval_flow"],
        cwd=cli.flows_dir,
        env=cli.env(TERM="xterm-256color"),
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=30) == 3
    out = b"".join(chunks).decode(errors="replace")
    assert "paused" in out
    assert "resume with" in out
    assert "legato resume " in out
