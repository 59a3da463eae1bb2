"""Artifacts contract: stored once per id, listed by run or key, on every backend."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from legato.records import Artifact
from legato.store.base import Store

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def artifact(n: int, *, key: str | None = None, run: str | None = None) -> Artifact:
    return Artifact(
        id=f"a{n:03d}",
        key=key,
        type="markdown",
        data=f'"# report {n}"',
        description=f"number {n}" if n % 2 else None,
        flow_run_id=run,
        task_run_id=None if run is None else f"t{n}",
        created=T0 + timedelta(seconds=n),
    )


def test_artifacts_are_listed_newest_first_by_key_and_by_run(store: Store) -> None:
    made = [
        artifact(1, key="report", run="r1"),
        artifact(2, run="r1"),
        artifact(3, key="report"),
        artifact(4, key="other", run="r2"),
    ]
    for one in made:
        store.create_artifact(one)
    assert store.list_artifacts() == made[::-1]
    assert store.list_artifacts(limit=2) == [made[3], made[2]]
    assert store.list_artifacts(key="report") == [made[2], made[0]]
    assert store.list_artifacts(flow_run_id="r1") == [made[0], made[1]]  # in making order
    assert store.list_artifacts(flow_run_id="r1", key="report") == [made[0]]
    assert store.list_artifacts(flow_run_id="nope") == []


def test_an_artifact_made_again_with_its_id_is_kept_once(store: Store) -> None:
    first = artifact(1, key="report", run="r1")
    store.create_artifact(first)
    store.create_artifact(
        Artifact(
            id=first.id,
            key="report",
            type="markdown",
            data='"# changed"',
            description=None,
            flow_run_id="r1",
            task_run_id=None,
            created=T0 + timedelta(hours=1),
        )
    )
    assert store.list_artifacts() == [first]


def test_pruning_a_run_deletes_its_artifacts_only(store: Store) -> None:
    from legato.records import FlowRun, RunOwner
    from legato.states import StateType

    def finished_run(run_id: str, day: float) -> None:
        store.create_flow_run(
            FlowRun(id=run_id, flow_name="etl", name="r", state=StateType.PENDING, created=T0)
        )
        owner = RunOwner(token=f"token-{run_id}", host="h", pid=1)
        store.start_flow_run(run_id, owner, from_states=[StateType.PENDING], now=T0)
        ended = T0 + timedelta(days=day)
        store.finish_flow_run(run_id, owner.token, state=StateType.COMPLETED, now=ended)

    finished_run("old", 1)
    finished_run("new", 40)
    store.create_artifact(artifact(1, run="old"))
    store.create_artifact(artifact(2, run="new"))
    store.create_artifact(artifact(3))
    store.prune_flow_runs(finished_before=T0 + timedelta(days=30), states=())
    assert [a.id for a in store.list_artifacts()] == ["a003", "a002"]


def test_update_artifact_replaces_the_data_of_an_artifact_of_that_type(store: Store) -> None:
    progress = Artifact(
        id="p001",
        key="load",
        type="progress",
        data="0.0",
        description="loading",
        flow_run_id="r1",
        task_run_id=None,
        created=T0,
    )
    store.create_artifact(progress)
    store.create_artifact(artifact(2, run="r1"))
    assert store.update_artifact("p001", type="progress", data="40.0", description=None)
    assert store.list_artifacts(key="load") == [replace(progress, data="40.0")]
    assert store.update_artifact("p001", type="progress", data="90.5", description="nearly")
    assert store.list_artifacts(key="load") == [
        replace(progress, data="90.5", description="nearly")
    ]
    # Another type, or no such id: nothing changes.
    assert not store.update_artifact("a002", type="progress", data="1.0", description=None)
    assert not store.update_artifact("nope", type="progress", data="1.0", description=None)
    assert store.list_artifacts(flow_run_id="r1")[1] == artifact(2, run="r1")
