"""`legato.artifacts`: Prefect 3's create_*_artifact functions, stored per run."""

from __future__ import annotations

import uuid

import pytest

import legato
from legato import flow, task
from legato.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from legato.errors import InvalidArtifactError
from legato.store.base import Store

BROKEN = {"flaky": True}


@task
def publish() -> int:
    create_table_artifact({"region": ["eu", "us"], "sales": [12, float("nan")]}, key="sales")
    return 1


@task
def flaky() -> int:
    create_link_artifact("https://example.com/data.csv", link_text="the data")
    if BROKEN["flaky"]:
        raise ValueError("not yet")
    return 2


@flow
def reporting() -> int:
    create_markdown_artifact("# Report\nAll good.", key="daily-report", description="daily")
    return publish() + flaky()


@pytest.mark.usefixtures("backend")
def test_artifacts_belong_to_their_run_and_are_not_repeated_on_resume(
    default_store: Store,
) -> None:
    BROKEN["flaky"] = True
    assert reporting(return_state=True).is_failed()
    run = default_store.list_flow_runs(flow_name="reporting", limit=1)[0]
    BROKEN["flaky"] = False
    assert legato.resume_flow_run(run.id) == 3

    made = default_store.list_artifacts(flow_run_id=run.id)
    # The flow body ran twice and publish() once: one markdown, one table. flaky()
    # ran in both executions, and each run of its body published its link.
    assert [(a.type, a.key) for a in made] == [
        ("markdown", "daily-report"),
        ("table", "sales"),
        ("link", None),
        ("link", None),
    ]
    markdown, table, link, _ = made
    assert markdown.data == '"# Report\\nAll good."' and markdown.description == "daily"
    assert markdown.task_run_id is None
    assert table.data == '{"region": ["eu", "us"], "sales": [12, null]}'  # NaN: empty cell
    tasks = {t.id: t.task_name for t in default_store.list_task_runs(run.id)}
    assert tasks[table.task_run_id] == "publish" and tasks[link.task_run_id] == "flaky"
    assert link.data == '{"link": "https://example.com/data.csv", "link_text": "the data"}'


def test_outside_a_run_an_artifact_has_no_run_and_ids_are_returned(
    default_store: Store,
) -> None:
    first = create_markdown_artifact("hello", key="notes")
    second = create_table_artifact([["a", 1], ["b", 2]], key="notes")
    assert isinstance(first, uuid.UUID) and first != second
    listed = default_store.list_artifacts(key="notes")
    assert [(str(a.id), a.type, a.flow_run_id) for a in listed] == [
        (str(second), "table", None),
        (str(first), "markdown", None),
    ]


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (lambda: create_markdown_artifact("x", key="Daily_Report"), "invalid artifact key"),
        (lambda: create_markdown_artifact(42), "markdown of an artifact must be a str"),  # type: ignore[arg-type]
        (lambda: create_table_artifact("rows"), "must be a dict of columns"),  # type: ignore[arg-type]
        (lambda: create_table_artifact({"a": 1}), "to a list of its values"),  # type: ignore[dict-item]
        (lambda: create_table_artifact([{"a": 1}, [1]]), "all dicts"),
        (lambda: create_link_artifact("https://x", key="x", description=1), "description"),  # type: ignore[arg-type]
        (lambda: create_markdown_artifact("x" * 1_000_001), "more than 1000000"),
    ],
)
def test_bad_artifacts_are_refused(call: object, problem: str, default_store: Store) -> None:
    assert callable(call)
    with pytest.raises(InvalidArtifactError, match=problem):
        call()
    assert default_store.list_artifacts() == []
