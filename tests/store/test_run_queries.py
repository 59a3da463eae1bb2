"""Run listing filters (tag, creation range, cursor pages) and run statistics,
on every backend, through the abstract API only."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from legato.errors import StoreError
from legato.records import FlowDurationStats, FlowRun, Notification, RunCount
from legato.states import StateType
from legato.store.base import Store
from legato.store.notifications import RUNS_QUEUED
from legato.store.sqlite import SQLiteStore

# Microseconds on purpose: bucket edges must hold at microsecond resolution.
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
S = StateType
US = timedelta(microseconds=1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_run(**changes: Any) -> FlowRun:
    fields: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "flow_name": "etl",
        "name": "brave-otter",
        "state": S.COMPLETED,
        "created": T0,
    }
    fields.update(changes)
    return FlowRun(**fields)


def add(store: Store, **changes: Any) -> FlowRun:
    run = make_run(**changes)
    store.create_flow_run(run)
    return run


def ids(store: Store, **filters: Any) -> list[str]:
    return [run.id for run in store.list_flow_runs(**filters)]


# --- list_flow_runs: tag -------------------------------------------------------------


def test_tag_filter_matches_whole_tags_only(store: Store) -> None:
    a = add(store, tags=("a",), created=at(1))
    ab = add(store, tags=("ab",), created=at(2))
    xa = add(store, tags=("x", "a"), created=at(3))
    add(store, tags=(), created=at(4))
    add(store, tags=("A", "b a", "a%"), created=at(5))
    quoted = add(store, tags=('say "hi"', "é✓"), created=at(6))

    assert ids(store, tag="a") == [xa.id, a.id]
    assert ids(store, tag="ab") == [ab.id]
    assert ids(store, tag="b") == []
    assert ids(store, tag="") == []
    assert ids(store, tag="a_") == []
    assert ids(store, tag='say "hi"') == [quoted.id]
    assert ids(store, tag="é✓") == [quoted.id]
    assert len(ids(store)) == 6


def stored_tag_rows(store: Store) -> list[tuple[str, str]]:
    """(run id, tag) rows of the backend's flow_run_tags table: a look behind the API."""
    query = "SELECT run_id, tag FROM flow_run_tags ORDER BY run_id, tag"
    if isinstance(store, SQLiteStore):
        return [tuple(row) for row in store._db.fetchall(query, ())]
    from legato.store.postgres import PostgresStore

    assert isinstance(store, PostgresStore)
    return [tuple(row) for row in store._db.fetchall(query, ())]


def test_tag_ties_are_broken_as_in_the_full_listing(store: Store) -> None:
    # Equal creation times: the run stored last comes first, with or without a tag.
    states = [S.COMPLETED, S.FAILED, S.RUNNING]
    runs = [
        add(store, tags=("t", "u") if i % 2 else ("t",), state=states[i % 3], created=T0)
        for i in range(9)
    ]
    everything = ids(store)
    assert everything == [run.id for run in reversed(runs)]
    assert ids(store, tag="t") == everything
    assert ids(store, tag="u") == [i for i in everything if i in {r.id for r in runs[1::2]}]
    assert ids(store, tag="t", states=[S.FAILED, S.COMPLETED]) == ids(
        store, states=[S.FAILED, S.COMPLETED]
    )
    assert ids(store, tag="t", limit=4) == everything[:4]
    assert ids(store, tag="t", states=[S.FAILED, S.RUNNING], limit=3) == ids(
        store, states=[S.FAILED, S.RUNNING], limit=3
    )


def test_every_way_of_storing_a_run_makes_it_found_by_its_tags(store: Store) -> None:
    repeated = add(store, tags=("a", "b", "a"), created=at(1))
    assert ids(store, tag="a") == [repeated.id]
    assert ids(store, tag="b") == [repeated.id]

    once = make_run(tags=("a", "slot"), created=at(2), idempotency_key="k1")
    stored, created = store.create_flow_run_once(once)
    assert created and stored.tags == ("a", "slot")
    again, created = store.create_flow_run_once(make_run(tags=("a", "other"), idempotency_key="k1"))
    assert not created and again.id == once.id
    assert ids(store, tag="slot") == [once.id]
    assert ids(store, tag="other") == []
    assert ids(store, tag="a") == [once.id, repeated.id]

    child = add(
        store,
        tags=("a", "sub"),
        created=at(3),
        parent_run_id=repeated.id,
        parent_call_key="sub[0]",
    )
    assert ids(store, tag="sub") == [child.id]
    assert ids(store, tag="a", parent_run_id=repeated.id) == [child.id]
    assert ids(store, tag="b", parent_run_id=repeated.id) == []

    with store.listen([RUNS_QUEUED]) as listener:
        queued = add(store, tags=("a",), created=at(4), state=S.SCHEDULED, work_queue="gpu")
        assert listener.wait(10) == [Notification(RUNS_QUEUED, "gpu")]
        untagged = add(store, created=at(5), state=S.SCHEDULED, work_queue="cpu")
        assert listener.wait(10) == [Notification(RUNS_QUEUED, "cpu")]
    assert ids(store, tag="a") == [queued.id, child.id, once.id, repeated.id]
    assert ids(store, tag="a", states=[S.SCHEDULED]) == [queued.id]
    assert untagged.id in ids(store)

    with pytest.raises(StoreError):  # the same id twice: refused, its tags left alone
        store.create_flow_run(make_run(id=repeated.id, tags=("c",)))
    assert ids(store, tag="c") == []
    expected = [(repeated.id, "a"), (repeated.id, "b"), (once.id, "a"), (once.id, "slot")]
    expected += [(child.id, "a"), (child.id, "sub"), (queued.id, "a")]
    assert sorted(stored_tag_rows(store)) == sorted(expected)


def test_pruned_runs_leave_the_tag_filter_and_their_tag_rows(store: Store) -> None:
    old = [add(store, tags=("nightly", "team:a"), created=at(i)) for i in range(3)]
    old_child = add(
        store,
        tags=("nightly", "child"),
        created=at(3),
        parent_run_id=old[0].id,
        parent_call_key="sub[0]",
    )
    still_running = add(store, tags=("nightly",), created=at(4), state=S.RUNNING)
    failed = add(store, tags=("nightly", "team:a"), created=at(5), state=S.FAILED)
    recent = [add(store, tags=("nightly",), created=at(100 + i)) for i in range(2)]
    assert len(ids(store, tag="nightly")) == 8

    result = store.prune_flow_runs(finished_before=at(50), states=[S.COMPLETED])

    assert result.flow_runs == 4  # three old runs and the child of one of them
    assert ids(store, tag="nightly") == [recent[1].id, recent[0].id, failed.id, still_running.id]
    assert ids(store, tag="team:a") == [failed.id]
    assert ids(store, tag="child") == []
    assert ids(store, tag="nightly", created_before=at(50)) == [failed.id, still_running.id]
    assert ids(store, tag="nightly", states=[S.COMPLETED, S.FAILED], limit=2) == [
        recent[1].id,
        recent[0].id,
    ]
    assert ids(store, tag="nightly", states=[S.COMPLETED]) == [recent[1].id, recent[0].id]
    assert ids(store, tag="child", parent_run_id=old[0].id) == []
    kept = [still_running, failed, *recent]
    assert sorted(stored_tag_rows(store)) == sorted(
        (run.id, tag) for run in kept for tag in dict.fromkeys(run.tags)
    )
    # The ids are free again, tags and all: nothing of the pruned runs is left.
    back = add(store, id=old[0].id, tags=("nightly", "team:a"), created=at(200))
    add(store, id=old_child.id, tags=("child",), created=at(201))
    assert ids(store, tag="team:a") == [back.id, failed.id]
    assert ids(store, tag="child") == [old_child.id]

    # A prune of everything leaves no tag rows at all.
    store.prune_flow_runs(finished_before=at(1000), states=[])
    assert ids(store, tag="nightly") == [still_running.id]
    assert stored_tag_rows(store) == [(still_running.id, "nightly")]


# --- list_flow_runs: creation range ----------------------------------------------------


def test_created_after_is_inclusive_and_created_before_exclusive(store: Store) -> None:
    runs = [add(store, created=at(i)) for i in range(6)]
    r = [run.id for run in runs]

    assert ids(store, created_after=at(2)) == [r[5], r[4], r[3], r[2]]
    assert ids(store, created_before=at(2)) == [r[1], r[0]]
    assert ids(store, created_after=at(1), created_before=at(4)) == [r[3], r[2], r[1]]
    assert ids(store, created_after=at(3), created_before=at(3)) == []
    # One microsecond either side of a run's creation time moves it in or out.
    assert ids(store, created_after=at(2) + US, created_before=at(4)) == [r[3]]
    assert ids(store, created_after=at(2) - US, created_before=at(2) + US) == [r[2]]
    assert ids(store, created_after=at(6)) == []
    assert ids(store, created_before=at(0)) == []
    assert ids(store, created_after=at(1), limit=2) == [r[5], r[4]]


def test_creation_bounds_in_other_time_zones_and_naive_as_utc(store: Store) -> None:
    runs = [add(store, created=at(i)) for i in range(4)]
    plus_two = timezone(timedelta(hours=2))
    assert ids(store, created_after=at(2).astimezone(plus_two)) == [runs[3].id, runs[2].id]
    naive = at(2).replace(tzinfo=None)
    assert ids(store, created_before=naive) == [runs[1].id, runs[0].id]


def test_new_filters_combine_with_state_flow_deployment_and_parent(store: Store) -> None:
    parent = add(store, flow_name="outer", created=at(0))
    a = add(store, flow_name="etl", state=S.COMPLETED, tags=("nightly",), created=at(1))
    b = add(store, flow_name="etl", state=S.FAILED, tags=("nightly",), created=at(2))
    c = add(store, flow_name="report", state=S.FAILED, tags=("nightly",), created=at(3))
    d = add(
        store,
        flow_name="etl",
        state=S.RUNNING,
        tags=("adhoc",),
        created=at(4),
        parent_run_id=parent.id,
        parent_call_key="etl[0]",
    )
    e = add(store, flow_name="etl", state=S.FAILED, tags=("nightly",), created=at(5))
    f = add(
        store, flow_name="etl", state=S.COMPLETED, tags=("nightly",), created=at(6), deployment="n"
    )

    assert ids(store, tag="nightly", states=[S.FAILED]) == [e.id, c.id, b.id]
    assert ids(store, tag="nightly", states=[S.FAILED, S.COMPLETED]) == [
        f.id,
        e.id,
        c.id,
        b.id,
        a.id,
    ]
    assert ids(
        store, tag="nightly", states=[S.FAILED, S.COMPLETED], created_before=at(5), limit=2
    ) == [c.id, b.id]
    assert ids(store, flow_name="etl", created_after=at(2), created_before=at(6)) == [
        e.id,
        d.id,
        b.id,
    ]
    assert ids(store, flow_name="etl", tag="nightly", states=[S.FAILED]) == [e.id, b.id]
    assert ids(store, states=[S.RUNNING, S.FAILED], created_after=at(4)) == [e.id, d.id]
    assert ids(store, parent_run_id=parent.id, tag="adhoc", created_after=at(4)) == [d.id]
    assert ids(store, parent_run_id=parent.id, created_before=at(4)) == []
    assert ids(store, deployment="n", tag="nightly", created_after=at(6)) == [f.id]
    assert ids(store, deployment="n", created_before=at(6)) == []
    assert ids(store, flow_name="report", tag="adhoc") == []


def test_cursor_pages_return_every_run_once_in_order(store: Store) -> None:
    seconds = list(range(25))
    random.Random(7).shuffle(seconds)  # inserted out of order
    states = [S.COMPLETED, S.FAILED, S.RUNNING]
    runs = [
        add(
            store,
            created=at(i * 1.5),
            state=states[i % 3],
            tags=("even",) if i % 2 == 0 else ("odd",),
        )
        for i in seconds
    ]
    newest_first = sorted(runs, key=lambda run: run.created, reverse=True)

    def pages(**filters: Any) -> list[list[str]]:
        found: list[list[str]] = []
        cursor: datetime | None = None
        while True:
            page = store.list_flow_runs(limit=10, created_before=cursor, **filters)
            found.append([run.id for run in page])
            if len(page) < 10:
                return found
            cursor = page[-1].created

    every = pages()
    assert [len(page) for page in every] == [10, 10, 5]
    assert [i for page in every for i in page] == [run.id for run in newest_first]

    # Several states: the per-state answers are merged, page by page.
    two_states = pages(states=[S.COMPLETED, S.FAILED])
    expected = [run.id for run in newest_first if run.state in (S.COMPLETED, S.FAILED)]
    assert len(expected) == 17
    assert [len(page) for page in two_states] == [10, 7]
    assert [i for page in two_states for i in page] == expected

    tagged = pages(tag="even", created_after=at(3))
    expected = [run.id for run in newest_first if "even" in run.tags and run.created >= at(3)]
    assert len(expected) == 12
    assert [len(page) for page in tagged] == [10, 2]
    assert [i for page in tagged for i in page] == expected

    # A full last page is followed by an empty one.
    exact = pages(created_after=at(15 * 1.5))
    assert [len(page) for page in exact] == [10, 0]


# --- flow_run_stats ------------------------------------------------------------------


def test_run_stats_count_top_level_runs_per_bucket_and_state(store: Store) -> None:
    since = at(0)
    add(store, created=since - US, state=S.COMPLETED)  # before since: not counted
    add(store, created=since, state=S.RUNNING)
    add(store, created=at(30), state=S.COMPLETED)
    add(store, created=at(60) - US, state=S.COMPLETED)  # last microsecond of bucket 0
    add(store, created=at(60), state=S.FAILED)  # first microsecond of bucket 1
    add(store, created=at(61), state=S.FAILED)
    add(store, created=at(62), state=S.CRASHED)
    add(store, created=at(150), state=S.COMPLETED)  # bucket 2
    add(store, created=at(179.5), state=S.COMPLETED)
    parent = add(store, created=at(5), state=S.RUNNING)
    add(store, created=at(6), state=S.FAILED, parent_run_id=parent.id, parent_call_key="s[0]")
    add(store, created=at(400), state=S.SCHEDULED)  # bucket 6; 3 to 5 are empty

    stats = store.flow_run_stats(since=since, bucket_seconds=60)

    def bucket(k: int) -> datetime:
        return since + timedelta(seconds=60 * k)

    assert stats == [
        RunCount(bucket_start=bucket(0), state=S.COMPLETED, count=2),
        RunCount(bucket_start=bucket(0), state=S.RUNNING, count=2),
        RunCount(bucket_start=bucket(1), state=S.CRASHED, count=1),
        RunCount(bucket_start=bucket(1), state=S.FAILED, count=2),
        RunCount(bucket_start=bucket(2), state=S.COMPLETED, count=2),
        RunCount(bucket_start=bucket(6), state=S.SCHEDULED, count=1),
    ]
    assert all(count.bucket_start.utcoffset() == timedelta(0) for count in stats)
    assert all(type(count.state) is StateType for count in stats)

    # A later start shifts the buckets: they are counted from since, not from the epoch.
    later = store.flow_run_stats(since=at(61), bucket_seconds=100)
    assert later == [
        RunCount(bucket_start=at(61), state=S.COMPLETED, count=1),
        RunCount(bucket_start=at(61), state=S.CRASHED, count=1),
        RunCount(bucket_start=at(61), state=S.FAILED, count=1),
        RunCount(bucket_start=at(161), state=S.COMPLETED, count=1),
        RunCount(bucket_start=at(361), state=S.SCHEDULED, count=1),
    ]
    # One bucket that holds everything.
    assert store.flow_run_stats(since=since, bucket_seconds=86400) == [
        RunCount(bucket_start=since, state=S.COMPLETED, count=4),
        RunCount(bucket_start=since, state=S.CRASHED, count=1),
        RunCount(bucket_start=since, state=S.FAILED, count=2),
        RunCount(bucket_start=since, state=S.RUNNING, count=2),
        RunCount(bucket_start=since, state=S.SCHEDULED, count=1),
    ]
    assert store.flow_run_stats(since=at(401), bucket_seconds=60) == []


def test_run_stats_answer_in_utc_for_any_time_zone(store: Store) -> None:
    add(store, created=at(10), state=S.COMPLETED)
    add(store, created=at(70), state=S.FAILED)
    local = at(0).astimezone(timezone(timedelta(hours=-5)))
    stats = store.flow_run_stats(since=local, bucket_seconds=60)
    assert stats == [
        RunCount(bucket_start=at(0), state=S.COMPLETED, count=1),
        RunCount(bucket_start=at(60), state=S.FAILED, count=1),
    ]
    assert [count.bucket_start.tzinfo for count in stats] == [UTC, UTC]
    naive = store.flow_run_stats(since=at(0).replace(tzinfo=None), bucket_seconds=60)
    assert naive == stats
    assert [count.bucket_start.tzinfo for count in naive] == [UTC, UTC]


def test_run_stats_refuse_a_bucket_that_is_not_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="bucket_seconds"):
        store.flow_run_stats(since=T0, bucket_seconds=0)


# --- flow_duration_stats ---------------------------------------------------------------


def finished(
    store: Store, flow_name: str, seconds: float, *, created: float, state: StateType = S.COMPLETED
) -> FlowRun:
    """A top-level run created at ``created`` that started a second later and ran
    ``seconds``."""
    return add(
        store,
        flow_name=flow_name,
        state=state,
        created=at(created),
        start_time=at(created + 1),
        end_time=at(created + 1 + seconds),
    )


def test_duration_stats_per_flow_slowest_first(store: Store) -> None:
    since = at(1000)
    finished(store, "slow", 100, created=1100)
    finished(store, "slow", 300, created=1500, state=S.FAILED)
    finished(store, "slow", 10_000, created=999)  # created before since: left out
    parent = finished(store, "fast", 10, created=1200)
    finished(store, "fast", 20, created=1300, state=S.CRASHED)
    finished(store, "fast", 30, created=1400, state=S.CANCELLED)
    # A subflow run is not counted, however long.
    add(
        store,
        flow_name="slow",
        state=S.FAILED,
        created=at(1000),
        start_time=at(1001),
        end_time=at(9001),
        parent_run_id=parent.id,
        parent_call_key="slow[0]",
    )
    # Cancelled before it started: an end but no start, so no duration.
    add(store, flow_name="fast", state=S.CANCELLED, created=at(1001), end_time=at(1002))
    # Still running: a start but no end.
    add(store, flow_name="mid", state=S.RUNNING, created=at(1001), start_time=at(1002))
    finished(store, "mid", 50, created=1050)
    finished(store, "mid", 70, created=1000)  # created exactly at since: counted
    finished(store, "tie_b", 40, created=1100, state=S.FAILED)
    finished(store, "tie_a", 40, created=1100)
    finished(store, "old", 5, created=500)

    stats = store.flow_duration_stats(since=since)
    assert [s.flow_name for s in stats] == ["slow", "mid", "tie_a", "tie_b", "fast"]
    assert [(s.runs, s.failed) for s in stats] == [(2, 1), (2, 0), (1, 0), (1, 1), (3, 1)]
    assert [s.mean_seconds for s in stats] == pytest.approx([200, 60, 40, 40, 20], abs=1e-3)
    assert [s.max_seconds for s in stats] == pytest.approx([300, 70, 40, 40, 30], abs=1e-3)
    assert all(type(s) is FlowDurationStats for s in stats)
    assert all(isinstance(s.mean_seconds, float) for s in stats)

    top = store.flow_duration_stats(since=since, limit=2)
    assert [s.flow_name for s in top] == ["slow", "mid"]
    assert store.flow_duration_stats(since=since, limit=0) == []
    # A later since drops the runs created before it.
    late = store.flow_duration_stats(since=at(1300))
    assert [(s.flow_name, s.runs, s.failed) for s in late] == [
        ("slow", 1, 1),
        ("fast", 2, 1),
    ]
    assert [s.mean_seconds for s in late] == pytest.approx([300, 25], abs=1e-3)
    assert store.flow_duration_stats(since=at(1501)) == []
