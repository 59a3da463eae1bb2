"""`Client.finished_task_runs`: remembered for a finished run, fresh once it moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from legato.client import FINISHED_CACHE_RUNS, Client
from legato.states import StateType

pytestmark = pytest.mark.usefixtures("backend")

FLOWS = """
from pathlib import Path

from legato import flow, task


@task
def step(i: int) -> int:
    return i


@task
def gate(marker: str) -> str:
    if not Path(marker).exists():
        raise RuntimeError("not yet")
    return "open"


@flow
def gated(marker: str) -> str:
    step(1)
    return gate(marker)
"""


def test_a_resumed_run_is_read_again_and_old_runs_are_forgotten(tmp_path: Path) -> None:
    (tmp_path / "gated_flows.py").write_text(FLOWS)
    marker = tmp_path / "open"
    client = Client()
    flow = client.load_flow(f"{tmp_path / 'gated_flows.py'}:gated")
    state = client.run_flow(flow, {"marker": str(marker)})
    assert state.type is StateType.FAILED and state.run_id is not None
    failed = client.get_run(state.run_id)
    first = client.finished_task_runs(failed)
    assert client.finished_task_runs(failed) is first  # remembered
    assert sorted(t.state.value for t in first) == ["completed", "failed"]

    marker.touch()
    assert client.resume_run(failed.id).type is StateType.COMPLETED
    resumed = client.get_run(failed.id)
    again = client.finished_task_runs(resumed)
    assert again is not first and {t.state for t in again} == {StateType.COMPLETED}

    for _ in range(FINISHED_CACHE_RUNS):
        other = client.run_flow(flow, {"marker": str(marker)}).run_id
        assert other is not None
        client.finished_task_runs(client.get_run(other))
    assert client.finished_task_runs(resumed) is not again  # evicted, read anew
