"""The partial text of streamed model calls (llm_streams), on every backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from legato.records import FlowRun, RunOwner
from legato.states import StateType
from legato.store.base import Store
from legato.store.base_llm_stream import LLMStreamText

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
S = StateType


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def running(store: Store) -> tuple[FlowRun, str]:
    run = FlowRun(id=uuid.uuid4().hex, flow_name="chat", name="r", state=S.PENDING, created=T0)
    store.create_flow_run(run)
    owner = RunOwner(token=uuid.uuid4().hex, host="h", pid=1)
    store.start_flow_run(run.id, owner, from_states=[S.PENDING], now=T0)
    return run, owner.token


def test_partial_text_is_replaced_in_place_listed_by_key_and_ended(store: Store) -> None:
    run, _ = running(store)
    other, _ = running(store)
    assert store.list_llm_streams(run.id) == []
    store.write_llm_stream(run.id, "llm[1]", "Hel", now=at(1))
    store.write_llm_stream(run.id, "llm[1]", "Hello wor", now=at(2))
    store.write_llm_stream(run.id, "llm[0]", "Bonjour \u00e9t\u00e9", now=at(3))
    store.write_llm_stream(other.id, "llm[0]", "elsewhere", now=at(3))
    assert store.list_llm_streams(run.id) == [
        LLMStreamText("llm[0]", "Bonjour \u00e9t\u00e9", at(3)),
        LLMStreamText("llm[1]", "Hello wor", at(2)),
    ]
    store.end_llm_stream(run.id, "llm[1]")
    store.end_llm_stream(run.id, "llm[1]")  # ending twice is no error
    store.end_llm_stream(run.id, "never[0]")
    assert [s.call_key for s in store.list_llm_streams(run.id)] == ["llm[0]"]
    assert [s.text for s in store.list_llm_streams(other.id)] == ["elsewhere"]


def test_pruning_a_run_deletes_its_partial_text(store: Store) -> None:
    run, token = running(store)
    kept, _ = running(store)
    store.write_llm_stream(run.id, "llm[0]", "cut short", now=at(1))
    store.write_llm_stream(kept.id, "llm[0]", "still going", now=at(1))
    store.finish_flow_run(run.id, token, state=S.CRASHED, now=at(2))
    pruned = store.prune_flow_runs(finished_before=at(10**6), states=[])
    assert pruned.flow_runs == 1
    assert store.list_llm_streams(run.id) == []
    assert [s.text for s in store.list_llm_streams(kept.id)] == ["still going"]
