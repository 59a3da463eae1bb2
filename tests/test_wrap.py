"""`legato wrap`: a real command, a real process tree, a real store (both backends)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from _waiting import wait_until
from legato.client import Client
from legato.records import FlowRun
from legato.states import StateType
from legato.store import get_default_store, reset_default_store

pytestmark = pytest.mark.usefixtures("backend")

# A shell that starts a grandchild sleeping, writes its pid, says so, and waits.
TREE = 'sleep 300 & echo $! > "$1"; echo started; wait'


def wrap(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "legato", "wrap", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "LEGATO_HEARTBEAT_SECONDS": "0.2",
            "LEGATO_WRAP_GRACE_SECONDS": "2",
            **(env or {}),
        },
    )


def pid_gone(pid: int) -> bool:
    """No such process, or only a zombie waiting to be reaped (it runs no more)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def only_run() -> FlowRun:
    runs = get_default_store().list_flow_runs()
    assert len(runs) == 1, runs
    return runs[0]


def started_tree(tmp_path: Path, *options: str) -> tuple[subprocess.Popen[str], int, FlowRun]:
    pidfile = tmp_path / "grandchild.pid"
    proc = wrap(*options, "--", "sh", "-c", TREE, "sh", str(pidfile))
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the grandchild")
    grandchild = int(pidfile.read_text())
    assert not pid_gone(grandchild)
    wait_until(lambda: get_default_store().list_flow_runs(), what="the run record")
    return proc, grandchild, only_run()


def test_output_logs_and_exit_code() -> None:
    proc = wrap(
        "--name",
        "report",
        "--tag",
        "nightly",
        "--",
        "sh",
        "-c",
        "echo hello; echo oops >&2; exit 3",
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert out == "hello\n"  # passed through
    assert "oops" in err
    run = only_run()
    assert run.flow_name == "report"
    assert run.state is StateType.FAILED
    assert "exited with code 3" in (run.state_message or "")
    assert {"nightly", "observed"} <= set(run.tags)
    assert run.parameters == {"command": ["sh", "-c", "echo hello; echo oops >&2; exit 3"]}
    assert run.owner is not None and run.owner.pid == proc.pid
    lines = [(log.logger, log.message) for log in get_default_store().read_logs(run.id)]
    assert ("legato.wrap.stdout", "hello") in lines
    assert ("legato.wrap.stderr", "oops") in lines


def test_success_after_a_retry(tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    script = f'if [ -e "{marker}" ]; then echo second; else touch "{marker}"; exit 1; fi'
    proc = wrap("--retries", "1", "--", "sh", "-c", script)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == "second\n"
    run = only_run()
    assert run.state is StateType.COMPLETED
    assert run.attempts == 2
    assert run.start_time is not None and run.end_time is not None


def test_cancel_stops_the_whole_tree(tmp_path: Path) -> None:
    proc, grandchild, run = started_tree(tmp_path)
    Client().cancel_run(run.id)
    proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert get_default_store().get_flow_run(run.id).state is StateType.CANCELLED  # type: ignore[union-attr]
    wait_until(lambda: pid_gone(grandchild), timeout=10, what="the grandchild to end")


def test_timeout_stops_the_whole_tree(tmp_path: Path) -> None:
    proc, grandchild, run = started_tree(tmp_path, "--timeout", "1")
    proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    ended = get_default_store().get_flow_run(run.id)
    assert ended is not None and ended.state is StateType.FAILED
    assert "timed out after 1s" in (ended.state_message or "")
    wait_until(lambda: pid_gone(grandchild), timeout=10, what="the grandchild to end")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_the_wrapper_stops_the_tree(tmp_path: Path, signum: int) -> None:
    proc, grandchild, run = started_tree(tmp_path)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    wait_until(lambda: pid_gone(grandchild), timeout=10, what="the grandchild to end")
    ended = get_default_store().get_flow_run(run.id)
    assert ended is not None and ended.state is StateType.CRASHED


def test_resume_refuses_a_wrapped_run() -> None:
    proc = wrap("--", "sh", "-c", "exit 1")
    proc.communicate(timeout=60)
    run = only_run()
    result = subprocess.run(
        [sys.executable, "-m", "legato", "resume", run.id], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "observed run" in result.stderr
    assert "run the command or script again" in result.stderr


def test_listed_and_shown_like_any_run() -> None:
    wrap("--name", "listed", "--", "true").communicate(timeout=60)
    run = only_run()
    for args in (["runs"], ["show", run.id]):
        shown = subprocess.run(
            [sys.executable, "-m", "legato", *args], capture_output=True, text=True
        )
        assert shown.returncode == 0, shown.stderr
        assert "listed" in shown.stdout and "completed" in shown.stdout
    events = subprocess.run(
        [sys.executable, "-m", "legato", "events"], capture_output=True, text=True
    )
    assert any(
        "legato.flow-run.Completed" in line and run.id in line
        for line in events.stdout.splitlines()
    ), events.stdout


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_store_spools_then_uploads(backend: str, legato_home: Path) -> None:
    unreachable = {
        "LEGATO_DATABASE_URL": f"postgresql://legato:x@127.0.0.1:{_closed_port()}/legato",
        "LEGATO_PG_RETRY_SECONDS": "0.2",
        "LEGATO_PG_TIMEOUT": "1",
    }
    proc = wrap("--name", "offline", "--", "sh", "-c", "echo still runs; exit 4", env=unreachable)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4
    assert out == "still runs\n"
    assert "spooled" in err
    spooled = list((legato_home / "spool").glob("*.json"))
    assert len(spooled) == 1
    reset_default_store()
    assert get_default_store().list_flow_runs() == []

    wrap("--name", "online", "--", "true").communicate(timeout=60)  # uploads the spool
    assert list((legato_home / "spool").iterdir()) == []
    runs = {run.flow_name: run for run in get_default_store().list_flow_runs()}
    assert set(runs) == {"offline", "online"}
    offline = runs["offline"]
    assert offline.state is StateType.FAILED
    assert "exited with code 4" in (offline.state_message or "")
    assert offline.owner is not None and offline.owner.pid == proc.pid
    assert "observed" in offline.tags
    messages = [log.message for log in get_default_store().read_logs(offline.id)]
    assert "still runs" in messages


def test_a_command_deployment_runs_on_a_worker(tmp_path: Path) -> None:
    deployed = subprocess.run(
        [
            sys.executable,
            "-m",
            "legato",
            "deploy",
            "--name",
            "nightly-sh",
            "--command",
            "sh -c 'echo from the worker; exit 0'",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert deployed.returncode == 0, deployed.stderr
    client = Client()
    run = client.trigger("nightly-sh", {})
    worker = subprocess.Popen(
        [sys.executable, "-m", "legato", "worker", "--lease-seconds", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: client.store.get_flow_run(run.id).state.is_final,  # type: ignore[union-attr]
            timeout=60,
            what="the worker to run the command",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    ended = client.store.get_flow_run(run.id)
    assert ended is not None and ended.state is StateType.COMPLETED, ended
    assert ended.deployment == "nightly-sh" and "observed" in ended.tags
    messages = [log.message for log in client.store.read_logs(run.id)]
    assert "from the worker" in messages
