"""End to end: a flow process killed with SIGKILL while a `legato worker` leads; the
crash alert reaches a real HTTP receiver within lease + 10 s, sent by the worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _receiver import running_receiver
from _waiting import wait_until
from legato.alerts import service
from legato.notify.channels import check_channel
from legato.records import utcnow
from legato.store import get_default_store

FLOW = textwrap.dedent(
    """
    import time
    from pathlib import Path

    from legato import flow


    @flow
    def victim(marker: str) -> None:
        Path(marker).write_text("started")
        time.sleep(120)  # the test kills the process here
    """
)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_sigkilled_flow_alerts_within_lease_plus_ten_seconds(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    lease = 2.0
    env = {**os.environ, "LEGATO_LEASE_SECONDS": f"{lease:g}"}
    store = get_default_store()
    with running_receiver() as receiver:
        config = check_channel("ops", "webhook", {"url": f"{receiver.url}/ops"})
        store.put_notification_channel("ops", "webhook", config, overwrite=False, now=utcnow())
        alerts = "- {name: crashes, on: [flow-run.crashed], match: {flow: victim}, channels: ops}"
        service.apply(store, service.load_yaml(alerts))
        flows = tmp_path / "victim.py"
        flows.write_text(FLOW)
        marker = tmp_path / "marker"
        leader = subprocess.Popen(
            [sys.executable, "-m", "legato", "worker", "--queue", "none-here"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        procs.append(leader)
        victim = subprocess.Popen(
            [sys.executable, "-m", "legato", "run", f"{flows}:victim", "-p", f"marker={marker}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        procs.append(victim)
        wait_until(marker.exists, timeout=60, what="the flow to start")
        os.kill(victim.pid, signal.SIGKILL)
        killed = time.monotonic()
        victim.wait(10)
        wait_until(
            lambda: receiver.at("/ops"),
            timeout=lease + 10,
            interval=0.1,
            what="the crash alert at the receiver",
        )
        took = time.monotonic() - killed
        [request] = receiver.at("/ops")
        sent = request.json()
        [run] = store.list_flow_runs(limit=5)
        assert sent["subject"] == f"victim run {run.name} is Crashed"
        assert f"process {victim.pid}" in sent["body"]
        assert took < lease + 10
