"""Progress artifacts: Prefect 3's create_progress_artifact / update_progress_artifact."""

from __future__ import annotations

import uuid

import pytest

from legato import flow
from legato.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from legato.errors import InvalidArtifactError
from legato.store.base import Store


@flow
def loading() -> uuid.UUID:
    progress = create_progress_artifact(0, key="load", description="loading rows")
    for done in (25, 50.5, 100):
        update_progress_artifact(progress, done)
    return progress


@pytest.mark.usefixtures("backend")
def test_a_progress_artifact_is_made_in_its_run_and_moved_on(default_store: Store) -> None:
    progress = loading()
    run = default_store.list_flow_runs(flow_name="loading", limit=1)[0]
    [made] = default_store.list_artifacts(flow_run_id=run.id)
    assert (made.id, made.type, made.key, made.data) == (str(progress), "progress", "load", "100.0")
    assert made.description == "loading rows"
    assert update_progress_artifact(progress, 7, description="again") == progress
    [made] = default_store.list_artifacts(flow_run_id=run.id)
    assert (made.data, made.description) == ("7.0", "again")


@pytest.mark.parametrize(
    ("progress", "problem"),
    [
        (-1, "from 0 to 100"),
        (100.5, "from 0 to 100"),
        (float("nan"), "from 0 to 100"),
        ("40", "not str"),
        (True, "not bool"),
    ],
)
def test_progress_outside_0_to_100_is_refused(
    progress: object, problem: str, default_store: Store
) -> None:
    with pytest.raises(InvalidArtifactError, match=problem):
        create_progress_artifact(progress)  # type: ignore[arg-type]
    assert default_store.list_artifacts() == []
    made = create_progress_artifact(10)
    with pytest.raises(InvalidArtifactError, match=problem):
        update_progress_artifact(made, progress)  # type: ignore[arg-type]
    assert [a.data for a in default_store.list_artifacts()] == ["10.0"]


def test_only_a_progress_artifact_can_be_updated(default_store: Store) -> None:
    markdown = create_markdown_artifact("# notes")
    with pytest.raises(InvalidArtifactError, match="no progress artifact with id"):
        update_progress_artifact(markdown, 50)
    with pytest.raises(InvalidArtifactError, match="no progress artifact with id"):
        update_progress_artifact(uuid.uuid4(), 50)
    with pytest.raises(InvalidArtifactError, match="not an artifact id"):
        update_progress_artifact("nope", 50)  # type: ignore[arg-type]
    assert [a.data for a in default_store.list_artifacts()] == ['"# notes"']
