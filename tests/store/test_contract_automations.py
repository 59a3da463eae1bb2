"""Automations contract: stored specs, and `commit_evaluation` writing buckets, firings
and action rows with the cursor move, or nothing when the cursor moved meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from legato._automation_records import ActionRow, Bucket, Evaluation, Firing
from legato.store.base import Store

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def firing(fid: str, aid: str, actions: int = 2) -> Firing:
    return Firing(
        id=fid,
        automation_id=aid,
        fired_at=T0,
        bucket_key="k",
        event_ids=("e1", "e2"),
        reason="2 matching event(s)",
        actions=tuple(
            ActionRow(firing_id=fid, index=i, spec=f'{{"n": {i}}}', next_attempt_at=T0)
            for i in range(actions)
        ),
    )


def test_automations_are_saved_by_name_and_replaced_in_place(store: Store) -> None:
    first = store.save_automation("a1", "nightly", '{"v": 1}', enabled=True, now=T0)
    later = T0 + timedelta(minutes=1)
    second = store.save_automation("a2", "nightly", '{"v": 2}', enabled=False, now=later)
    assert (second.id, second.created, second.spec, second.enabled) == (
        "a1",
        first.created,
        '{"v": 2}',
        False,
    )
    assert second.updated == later
    assert store.get_automation("nightly") == second
    assert store.set_automation_enabled("nightly", True, now=later)
    assert not store.set_automation_enabled("missing", True, now=later)
    assert [a.name for a in store.list_automations()] == ["nightly"]
    assert store.list_automations()[0].enabled


def test_commit_evaluation_writes_everything_with_the_cursor(store: Store) -> None:
    store.save_automation("a1", "x", "{}", enabled=True, now=T0)
    bucket = Bucket("a1", "k", T0, 1, ("e1",), T0 + timedelta(seconds=5))
    assert store.get_evaluator_cursor("ev") is None
    assert store.commit_evaluation("ev", None, "c1", Evaluation(upserts=(bucket,)))
    assert store.get_evaluator_cursor("ev") == "c1"
    assert store.load_buckets([("a1", "k"), ("a1", "other")]) == [bucket]
    assert store.expired_buckets(T0 + timedelta(seconds=4)) == []
    assert store.expired_buckets(T0 + timedelta(seconds=5)) == [bucket]

    done = Evaluation(deletes=(("a1", "k"),), firings=(firing("f1", "a1"),))
    assert store.commit_evaluation("ev", "c1", "c2", done)
    assert store.list_buckets("a1") == []
    [stored] = store.list_firings("a1")
    assert (stored.id, stored.event_ids, stored.reason) == (
        "f1",
        ("e1", "e2"),
        done.firings[0].reason,
    )
    assert [a.idempotency_key for a in stored.actions] == ["f1:0", "f1:1"]
    assert store.count_firings("a1") == 1


def test_a_stale_cursor_writes_nothing(store: Store) -> None:
    store.save_automation("a1", "x", "{}", enabled=True, now=T0)
    assert store.commit_evaluation("ev", None, "c1", Evaluation())
    # A second evaluator that read before the first committed: both "from None"...
    assert not store.commit_evaluation("ev", None, "c9", Evaluation(firings=(firing("f0", "a1"),)))
    # ...and one whose expected cursor is behind.
    late = Evaluation(firings=(firing("f1", "a1"),), upserts=(Bucket("a1", "k", T0, 1),))
    assert not store.commit_evaluation("ev", "c0", "c2", late)
    assert store.get_evaluator_cursor("ev") == "c1"
    assert store.count_firings("a1") == 0
    assert store.list_buckets("a1") == []
    assert store.due_actions(T0 + timedelta(days=1)) == []


def test_action_rows_are_due_retried_and_finished(store: Store) -> None:
    store.save_automation("a1", "x", "{}", enabled=True, now=T0)
    assert store.commit_evaluation("ev", None, "c1", Evaluation(firings=(firing("f1", "a1"),)))
    due = store.due_actions(T0)
    assert [(a.idempotency_key, a.state, a.attempts) for a in due] == [
        ("f1:0", "pending", 0),
        ("f1:1", "pending", 0),
    ]
    later = T0 + timedelta(seconds=30)
    store.finish_action("f1", 0, state="done", attempts=1, result="ok", next_attempt_at=None)
    store.finish_action("f1", 1, state="pending", attempts=1, result="boom", next_attempt_at=later)
    assert store.due_actions(T0 + timedelta(seconds=29)) == []
    [retry] = store.due_actions(later)
    assert (retry.index, retry.attempts, retry.result) == (1, 1, "boom")
    [stored] = store.list_firings("a1")
    assert [(a.state, a.result) for a in stored.actions] == [("done", "ok"), ("pending", "boom")]


def test_deleting_an_automation_removes_its_state(store: Store) -> None:
    store.save_automation("a1", "x", "{}", enabled=True, now=T0)
    bucket = Bucket("a1", "k", T0, 1)
    part = Bucket("a1#0", "", T0, 1)  # the state of a compound trigger's part
    kept = Bucket("a10", "", T0, 1)
    assert store.commit_evaluation(
        "ev", None, "c1", Evaluation(upserts=(bucket, part, kept), firings=(firing("f1", "a1"),))
    )
    assert store.delete_automation("x")
    assert not store.delete_automation("x")
    assert store.get_automation("x") is None
    assert store.list_buckets("a1") == [] and store.count_firings("a1") == 0
    assert store.list_buckets("a1#0") == [] and store.list_buckets("a10") == [kept]
    assert store.due_actions(T0 + timedelta(days=1)) == []
