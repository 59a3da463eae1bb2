"""Artifacts: markdown, tables, links and progress a flow or task publishes for people.

    from legato.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact("# Report\\nAll good.", key="daily-report")
    create_table_artifact([{"region": "eu", "sales": 12}], key="sales")
    create_link_artifact("https://example.com/data.csv", link_text="the data")
    progress = create_progress_artifact(0.0, key="load")
    update_progress_artifact(progress, 40.0)  # a percentage, 0 to 100

The functions of Prefect 3's ``prefect.artifacts``, with the same arguments;
each returns the artifact's id. Inside a run an artifact belongs to the flow
run and the task run making it (`legato show RUN`), outside one to no run;
`legato artifacts [--key KEY]` lists them. A key is lowercase letters, digits
and dashes.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from legato.engine import artifacts as _artifacts

__all__ = [
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "update_progress_artifact",
]


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> UUID:
    """Publish ``markdown`` (a str of Markdown); returns the artifact's id."""
    data = _artifacts.markdown_data(markdown)
    return _artifacts.create_artifact("markdown", data, key, description)


def create_table_artifact(
    table: dict[str, list[Any]] | list[dict[str, Any]] | list[list[Any]],
    key: str | None = None,
    description: str | None = None,
) -> UUID:
    """Publish a table: a dict of columns, a list of row dicts, or a list of row lists
    (NaN cells become empty); returns the artifact's id."""
    data = _artifacts.check_table(table)
    return _artifacts.create_artifact("table", data, key, description)


def create_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> UUID:
    """Publish a link (shown as ``link_text`` when given); returns the artifact's id."""
    data = _artifacts.link_data(link, link_text)
    return _artifacts.create_artifact("link", data, key, description)


def create_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> UUID:
    """Publish a progress (a percentage, 0 to 100) that `update_progress_artifact`
    moves on; returns the artifact's id."""
    data = _artifacts.progress_data(progress)
    return _artifacts.create_artifact("progress", data, key, description)


def update_progress_artifact(
    artifact_id: UUID, progress: float, description: str | None = None
) -> UUID:
    """Set the progress (0 to 100) of the artifact ``artifact_id`` made by
    `create_progress_artifact`, and its description when given; returns its id."""
    return _artifacts.update_progress(artifact_id, progress, description)
