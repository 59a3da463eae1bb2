"""Model calls, usage, prompts and forks contract (issue 15), on every backend."""

from __future__ import annotations

import pickle
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from legato._llm_records import (
    LLMCallRecord,
    LLMGroup,
    LLMOutcome,
    LLMUsage,
    LLMUsageCounter,
    LLMUsageTotal,
    PromptSummary,
    PromptVersion,
)
from legato.errors import (
    ConfigurationError,
    PromptVersionAmbiguousError,
    RunNotFoundError,
    RunOwnershipLost,
    StoreError,
)
from legato.records import FlowRun, RunOwner, StoredResult, TaskRun
from legato.states import StateType
from legato.store.base import Store

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
S = StateType


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_run(
    store: Store, *, flow: str = "triage", deployment: str | None = None, days: float = 0
) -> tuple[FlowRun, str]:
    """A running flow run and its owner token."""
    run = FlowRun(
        id=uuid.uuid4().hex,
        flow_name=flow,
        name="r",
        state=S.PENDING,
        created=at(days * 86400),
        deployment=deployment,
    )
    store.create_flow_run(run)
    owner = RunOwner(token=uuid.uuid4().hex, host="h", pid=1)
    store.start_flow_run(run.id, owner, from_states=[S.PENDING], now=at(days * 86400))
    return run, owner.token


def call(
    run_id: str,
    key: str = "llm[0]",
    try_number: int = 1,
    *,
    started: float = 0,
    model: str = "gpt-x",
    provider: str = "openai",
    tokens: tuple[int, int] = (10, 5),
    cost: float | None = 0.5,
    outcome: LLMOutcome = LLMOutcome.OK,
    response: str = '{"text": "hi"}',
) -> LLMCallRecord:
    return LLMCallRecord(
        id=uuid.uuid4().hex,
        flow_run_id=run_id,
        call_key=key,
        try_number=try_number,
        provider=provider,
        model=model,
        outcome=outcome,
        started=at(started),
        latency_seconds=0.25,
        usage=LLMUsage(tokens[0], tokens[1], 2, 1),
        cost_usd=cost,
        finish_reason="stop",
        params_json='{"temperature": 0}',
        request_json='{"messages": []}',
        response_json=response,
        error=None if outcome is LLMOutcome.OK else "field missing",
        prompt_name="classify",
        prompt_version="abcd1234",
    )


# --- recording -------------------------------------------------------------------------


def test_a_try_is_recorded_once_and_read_back_whole(store: Store) -> None:
    run, token = new_run(store)
    first = call(run.id, outcome=LLMOutcome.INVALID)
    store.record_llm_call(first, token)
    # A resumed run writing the same try again keeps the first answer (it was paid for).
    store.record_llm_call(replace(first, id="other", response_json='{"text": "new"}'), token)
    assert store.list_llm_calls(run.id) == [first]


def test_a_stale_owner_token_writes_nothing_and_raises(store: Store) -> None:
    run, token = new_run(store)
    with pytest.raises(RunOwnershipLost):
        store.record_llm_call(call(run.id), "not-the-owner")
    # Also when the try is recorded already: the fence, not the conflict, decides.
    store.record_llm_call(call(run.id, "llm[1]"), token)
    with pytest.raises(RunOwnershipLost):
        store.record_llm_call(call(run.id, "llm[1]"), "not-the-owner")
    assert [c.call_key for c in store.list_llm_calls(run.id)] == ["llm[1]"]
    assert store.llm_usage_counters()[0].calls == 1


def test_tries_are_listed_by_start_key_and_try_and_filtered_by_exact_key(store: Store) -> None:
    run, token = new_run(store)
    other, other_token = new_run(store)
    made = [
        call(run.id, "llm[1]", 2, started=5),
        call(run.id, "llm[1]", 1, started=5),
        call(run.id, "llm[0]", 1, started=5),
        call(run.id, "llm[2]", 1, started=1),
        call(run.id, "llm[1]/llm[0]", 1, started=9),
    ]
    for one in made:
        store.record_llm_call(one, token)
    store.record_llm_call(call(other.id, "llm[1]"), other_token)
    listed = store.list_llm_calls(run.id)
    assert [(c.call_key, c.try_number) for c in listed] == [
        ("llm[2]", 1),
        ("llm[0]", 1),
        ("llm[1]", 1),
        ("llm[1]", 2),
        ("llm[1]/llm[0]", 1),
    ]
    assert [c.step_key for c in store.list_llm_calls(run.id, call_key="llm[1]")] == [
        "llm[1].try[1]",
        "llm[1].try[2]",
    ]
    assert store.list_llm_calls(run.id, call_key="llm[9]") == []
    assert store.list_llm_calls("no-such-run") == []


# --- usage -----------------------------------------------------------------------------


def test_usage_totals_per_run_flow_deployment_and_model(store: Store) -> None:
    a, a_token = new_run(store, flow="triage", deployment="prod")
    b, b_token = new_run(store, flow="triage")
    c, c_token = new_run(store, flow="summarize", deployment="prod")
    store.record_llm_call(call(a.id, "llm[0]", cost=1.0, model="m1", tokens=(100, 10)), a_token)
    store.record_llm_call(call(a.id, "llm[1]", cost=None, model="m2", tokens=(1, 1)), a_token)
    store.record_llm_call(call(b.id, "llm[0]", cost=0.25, model="m1", tokens=(7, 3)), b_token)
    store.record_llm_call(
        call(c.id, "llm[0]", cost=3.0, model="m2", tokens=(50, 50), started=100), c_token
    )

    def totals(group: LLMGroup, **options: object) -> list[tuple[str, int, int, float]]:
        found = store.llm_usage_totals(group, **options)  # type: ignore[arg-type]
        return [(t.group, t.calls, t.usage.total_tokens, t.cost_usd) for t in found]

    assert totals(LLMGroup.FLOW_RUN) == [
        (c.id, 1, 100, 3.0),
        (a.id, 2, 112, 1.0),
        (b.id, 1, 10, 0.25),
    ]
    assert totals(LLMGroup.FLOW) == [("summarize", 1, 100, 3.0), ("triage", 3, 122, 1.25)]
    assert totals(LLMGroup.DEPLOYMENT) == [("prod", 3, 212, 4.0), ("", 1, 10, 0.25)]
    assert totals(LLMGroup.MODEL) == [("m2", 2, 102, 3.0), ("m1", 2, 120, 1.25)]
    # Equal costs are ordered by group.
    assert totals(LLMGroup.MODEL, flow_run_ids=[a.id]) == [("m1", 1, 110, 1.0), ("m2", 1, 2, 0.0)]
    assert totals(LLMGroup.FLOW, flow_run_ids=[a.id, b.id, a.id, "missing"]) == [
        ("triage", 3, 122, 1.25)
    ]
    assert totals(LLMGroup.FLOW_RUN, flow_run_ids=[]) == []
    assert totals(LLMGroup.FLOW_RUN, since=at(100)) == [(c.id, 1, 100, 3.0)]
    assert totals(LLMGroup.FLOW_RUN, flow_run_ids=[a.id, c.id], since=at(50)) == [
        (c.id, 1, 100, 3.0)
    ]
    whole = store.llm_usage_totals(LLMGroup.FLOW_RUN, flow_run_ids=[b.id])
    assert whole == [LLMUsageTotal(b.id, 1, LLMUsage(7, 3, 2, 1), 0.25)]


def test_usage_counters_are_monotonic_skip_copies_and_survive_pruning(store: Store) -> None:
    run, token = new_run(store, flow="triage", deployment="prod")
    other, other_token = new_run(store, flow="triage")
    store.record_llm_call(call(run.id, "llm[0]", cost=1.0, tokens=(10, 5)), token)
    store.record_llm_call(call(run.id, "llm[0]", 2, cost=None, tokens=(1, 1)), token)
    store.record_llm_call(call(run.id, "llm[0]", 2, cost=9.0), token)  # kept once
    store.record_llm_call(call(other.id, provider="anthropic", model="c", cost=0.5), other_token)
    expected = [
        LLMUsageCounter("triage", "", "anthropic", "c", 1, LLMUsage(10, 5, 2, 1), 0.5),
        LLMUsageCounter("triage", "prod", "openai", "gpt-x", 2, LLMUsage(11, 6, 4, 2), 1.0),
    ]
    assert store.llm_usage_counters() == expected

    fork = FlowRun(
        id=uuid.uuid4().hex, flow_name="triage", name="f", state=S.PENDING, created=at(1)
    )
    store.fork_flow_run(run.id, fork, None, ["llm[0]"])
    assert len(store.list_llm_calls(fork.id)) == 2
    assert store.llm_usage_counters() == expected  # the copies were paid for by the source

    for one, owner in ((run, token), (other, other_token)):
        store.finish_flow_run(one.id, owner, state=S.COMPLETED, now=at(2))
    pruned = store.prune_flow_runs(finished_before=at(10**6), states=[])
    assert pruned.flow_runs == 2
    assert store.list_llm_calls(run.id) == [] and store.list_llm_calls(other.id) == []
    assert len(store.list_llm_calls(fork.id)) == 2  # another run's rows stay
    assert store.llm_usage_counters() == expected


# --- prompts ---------------------------------------------------------------------------


def test_prompt_versions_are_stored_once_and_found_by_newest_and_prefix(store: Store) -> None:
    first = store.save_prompt("classify", "Classify: {t}", "abcd1111", now=at(0))
    assert first == PromptVersion("classify", "abcd1111", "Classify: {t}", at(0))
    # Saved again (same content hash): the stored one, unchanged.
    assert store.save_prompt("classify", "changed?", "abcd1111", now=at(50)) == first
    second = store.save_prompt("classify", "Classify now: {t}", "abcd2222", now=at(10))
    third = store.save_prompt("classify", "Sort: {t}", "ffff3333", now=at(10))  # same instant
    store.save_prompt("draft", "Draft a reply", "0000aaaa", now=at(5))

    assert store.get_prompt("classify") == third  # newest (made last at the same time)
    assert store.get_prompt("classify", "abcd1111") == first
    assert store.get_prompt("classify", "abcd2") == second
    assert store.get_prompt("classify", "ffff333") == third
    assert store.get_prompt("classify", "abc") is None  # under 4 characters: exact only
    assert store.get_prompt("classify", "9999") is None
    assert store.get_prompt("nope") is None
    assert store.get_prompt("draft", "abcd1111") is None
    assert store.get_prompt("classify", "abcd%") is None  # no wildcards
    with pytest.raises(PromptVersionAmbiguousError, match="abcd1111, abcd2222") as raised:
        store.get_prompt("classify", "abcd")
    assert isinstance(raised.value, ConfigurationError)

    assert store.list_prompt_versions("classify") == [third, second, first]
    assert store.list_prompt_versions("nope") == []
    assert store.list_prompts() == [
        PromptSummary("classify", 3, "ffff3333", at(10)),
        PromptSummary("draft", 1, "0000aaaa", at(5)),
    ]


# --- fork ------------------------------------------------------------------------------


def record_task(store: Store, run_id: str, token: str, key: str, value: object) -> TaskRun:
    task = TaskRun(
        id=uuid.uuid4().hex,
        flow_run_id=run_id,
        call_key=key,
        task_name=key.split("[")[0],
        name=key,
        state=S.COMPLETED,
        start_time=at(1),
        end_time=at(2),
        attempts=1,
        args_fingerprint=f"fp-{key}",
    )
    store.record_task_run(task, token, result=StoredResult("pickle", pickle.dumps(value)))
    return task


def test_fork_copies_exactly_the_keys_and_the_model_calls_under_them(store: Store) -> None:
    source, token = new_run(store)
    kept = [record_task(store, source.id, token, key, n) for n, key in enumerate(["a[0]", "b[0]"])]
    record_task(store, source.id, token, "c[0]", 99)
    for key in ("a[0]", "a[0]/llm[0]", "a[0]/llm[0]/x[0]", "a[0]x", "llm[0]", "c[0]/llm[0]"):
        store.record_llm_call(call(source.id, key), token)
    store.record_llm_call(call(source.id, "llm[0]", 2, outcome=LLMOutcome.INVALID), token)

    fork = FlowRun(
        id=uuid.uuid4().hex,
        flow_name="triage",
        name="forked",
        state=S.PENDING,
        created=at(60),
        tags=("fork",),
    )
    store.fork_flow_run(source.id, fork, b"params", ["a[0]", "b[0]", "llm[0]", "never[0]"])

    assert store.get_flow_run(fork.id) == fork
    assert store.get_parameters_blob(fork.id) == b"params"
    copies = store.list_task_runs(fork.id)
    assert [t.call_key for t in copies] == ["a[0]", "b[0]"]
    for original, copy in zip(kept, copies, strict=True):
        assert copy.id != original.id and copy.flow_run_id == fork.id
        assert replace(copy, id=original.id, flow_run_id=source.id) == store.get_task_run(
            original.id
        )
        result = store.get_task_result(copy.id)
        assert result is not None and pickle.loads(result.payload) == kept.index(original)
    calls = store.list_llm_calls(fork.id)
    assert [c.step_key for c in calls] == [
        "a[0].try[1]",
        "a[0]/llm[0].try[1]",
        "a[0]/llm[0]/x[0].try[1]",
        "llm[0].try[1]",
        "llm[0].try[2]",
    ]
    originals = {c.step_key: c for c in store.list_llm_calls(source.id)}
    for made in calls:
        assert made.copied_from == source.id and made.id != originals[made.step_key].id
        assert made == replace(
            originals[made.step_key],
            id=made.id,
            flow_run_id=fork.id,
            copied_from=source.id,
        )
    # A fork's copies count for its run in the totals.
    (total,) = store.llm_usage_totals(LLMGroup.FLOW_RUN, flow_run_ids=[fork.id])
    assert (total.calls, total.cost_usd) == (5, 2.5)
    # The source is untouched.
    assert len(store.list_task_runs(source.id)) == 3
    assert len(store.list_llm_calls(source.id)) == 7


def test_a_failing_fork_leaves_nothing(store: Store) -> None:
    source, token = new_run(store)
    record_task(store, source.id, token, "a[0]", 1)
    store.record_llm_call(call(source.id, "a[0]/llm[0]"), token)
    taken, _ = new_run(store)  # the new run's id exists already
    fork = FlowRun(id=taken.id, flow_name="triage", name="f", state=S.PENDING, created=at(9))
    with pytest.raises(StoreError, match="already exists"):
        store.fork_flow_run(source.id, fork, None, ["a[0]"])
    assert store.list_task_runs(taken.id) == []
    assert store.list_llm_calls(taken.id) == []

    missing = FlowRun(
        id=uuid.uuid4().hex, flow_name="triage", name="f", state=S.PENDING, created=at(9)
    )
    with pytest.raises(RunNotFoundError):
        store.fork_flow_run("no-such-run", missing, None, ["a[0]"])
    assert store.get_flow_run(missing.id) is None
