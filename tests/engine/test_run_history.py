"""A run's own history in its logs: paused, resumed, retried (issue 11: "record
'paused', 'resumed by …' and 'retried' lines so the history is readable")."""

from __future__ import annotations

import os
from pathlib import Path

import legato
from legato import RunInput, flow, pause_flow_run, task
from legato.store.base import Store


class Go(RunInput):
    ok: bool


@task
def work(x: int) -> int:
    return x


@flow
def waits() -> bool:
    work(1)
    return pause_flow_run(wait_for_input=Go).ok


def marker() -> Path:
    return Path(os.environ["LEGATO_TEST_JOURNAL"]).with_name("broken")


@flow
def breaks() -> int:
    value = work(2)
    if marker().exists():
        raise RuntimeError("broken on purpose")
    return value


tries = {"n": 0}


@flow(retries=1)
def flaky() -> int:
    tries["n"] += 1
    if tries["n"] == 1:
        raise ValueError("first attempt fails")
    return work(3)


def history(store: Store, flow_name: str) -> list[str]:
    run = store.list_flow_runs(flow_name=flow_name, limit=1)[0]
    return [log.message for log in store.read_logs(run.id) if log.logger == "legato.run"]


def test_a_pause_and_its_resume_are_in_the_runs_history(default_store: Store) -> None:
    assert waits(return_state=True).is_paused()
    run = default_store.list_flow_runs(flow_name="waits", limit=1)[0]
    assert legato.resume_flow_run(run.id, {"ok": True}) is True
    lines = history(default_store, "waits")
    assert len(lines) == 2, lines
    assert lines[0].startswith("paused at 'pause[0]' for Go input")
    assert lines[1].startswith("resumed by pid") and "after it was paused" in lines[1]


def test_a_resume_after_a_failure_is_in_the_runs_history(default_store: Store) -> None:
    marker().touch()
    assert breaks(return_state=True).is_failed()
    marker().unlink()
    run = default_store.list_flow_runs(flow_name="breaks", limit=1)[0]
    assert legato.resume_flow_run(run.id) == 2
    [line] = history(default_store, "breaks")
    assert "after it was failed" in line


def test_a_flow_retry_is_in_the_runs_history(default_store: Store) -> None:
    tries["n"] = 0
    assert flaky() == 3
    lines = history(default_store, "flaky")
    assert len(lines) == 2, lines
    assert "attempt 1 failed with ValueError: first attempt fails; retrying in 0s" in lines[0]
    assert lines[1].startswith("attempt 2 started (flow retry 1)")
