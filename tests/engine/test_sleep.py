"""`legato.sleep` in a run executed in this process: durable wake-up time, replay."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _engine_support import Journal, record

import legato
from legato import flow, task
from legato.client import Client
from legato.errors import ConfigurationError
from legato.states import StateType


@task
def note(text: str) -> str:
    record(text)
    return text


@flow
def nap_then_fail_once(marker: str) -> str:
    note("before")
    legato.sleep(0.2)
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails after the sleep")
    return note("after")


def test_a_sleep_keeps_its_wake_up_time_across_a_resume(tmp_path: Path, journal: Journal) -> None:
    state = nap_then_fail_once(str(tmp_path / "marker"), return_state=True)
    assert state.type is StateType.FAILED
    client = Client()
    found, first = client.store.get_run_input(state.run_id or "", "sleep[0]")
    assert found and first is not None and json.loads(first)["until"] > 0
    resumed = client.resume_run(state.run_id or "")
    assert resumed.type is StateType.COMPLETED
    _, again = client.store.get_run_input(state.run_id or "", "sleep[0]")
    assert again == first  # not a new sleep: the resumed run sleeps only what was left
    assert journal.counts()["before"] == 1 and journal.counts()["after"] == 1


@flow
def keyed_naps() -> None:
    legato.sleep(0, key="settle")
    legato.sleep(0)


def test_sleep_keys_are_recorded_by_name_and_by_count() -> None:
    state = keyed_naps(return_state=True)
    assert state.type is StateType.COMPLETED
    store = Client().store
    assert store.get_run_input(state.run_id or "", "settle")[0]
    assert store.get_run_input(state.run_id or "", "sleep[0]")[0]


@pytest.mark.parametrize("seconds", [-1, float("nan"), "5"])
def test_bad_sleep_durations_are_clear_errors(seconds: object) -> None:
    with pytest.raises(ConfigurationError, match="number of seconds"):
        legato.sleep(seconds)  # type: ignore[arg-type]


def test_outside_a_flow_it_is_a_plain_sleep() -> None:
    legato.sleep(0.01)
