"""Artifacts and variables as the API answers them and as the web UI shows them.

Nothing here renders user text as HTML: markdown stays text (the templates
escape it), table cells become plain strings, and a link is offered as a link
only when it is an http or https URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from legato.client.views import isoformat, shorten
from legato.records import Artifact, StoredVariable

TABLE_ROWS = 50  # rows a table artifact shows on the run page
VALUE_CHARS = 200  # characters of a variable's JSON value the variables page shows
SAFE_SCHEMES = ("http", "https")


def _decode(text: str) -> Any:
    """Stored JSON text as a value; text that is not JSON (never written by
    legato, but the store does not check) is answered as the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def artifact_to_dict(artifact: Artifact) -> dict[str, Any]:
    return {
        "id": artifact.id,
        "key": artifact.key,
        "type": artifact.type,
        "data": _decode(artifact.data),
        "description": artifact.description,
        "flow_run_id": artifact.flow_run_id,
        "task_run_id": artifact.task_run_id,
        "created": isoformat(artifact.created),
    }


def variable_to_dict(variable: StoredVariable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "value": _decode(variable.value),
        "tags": list(variable.tags),
        "created": isoformat(variable.created),
        "updated": isoformat(variable.updated),
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


@dataclass(frozen=True, slots=True)
class TableView:
    columns: list[str]
    rows: list[list[str]]
    more_rows: int


def table_view(data: Any, limit: int = TABLE_ROWS) -> TableView | None:
    """A table artifact's data (a dict of columns, a list of row dicts, or a list
    of row lists) as column names and at most ``limit`` rows of text cells."""
    if isinstance(data, dict):
        columns = [str(name) for name in data]
        lists = [c if isinstance(c, list) else [c] for c in data.values()]
        total = max((len(c) for c in lists), default=0)
        rows = [
            [_cell(c[i]) if i < len(c) else "" for c in lists] for i in range(min(total, limit))
        ]
        return TableView(columns, rows, total - len(rows))
    if isinstance(data, list):
        if all(isinstance(row, dict) for row in data):
            names: dict[str, None] = {}
            for row in data:
                names.update(dict.fromkeys(str(k) for k in row))
            columns = list(names)
            rows = [[_cell(row.get(name)) for name in columns] for row in data[:limit]]
            return TableView(columns, rows, len(data) - len(rows))
        if all(isinstance(row, list) for row in data):
            width = max((len(row) for row in data), default=0)
            rows = [[_cell(c) for c in row] + [""] * (width - len(row)) for row in data[:limit]]
            return TableView([], rows, len(data) - len(rows))
    return None


@dataclass(frozen=True, slots=True)
class ArtifactView:
    """What the run page shows of one artifact."""

    id: str
    label: str  # its key, or the start of its id
    type: str
    description: str | None
    created: Any
    text: str | None = None  # markdown, or anything shown as plain text
    table: TableView | None = None
    href: str | None = None  # an http(s) URL only
    link_text: str | None = None
    progress: float | None = None


def safe_href(link: object) -> str | None:
    """``link`` when it is an http or https URL, else None (shown as text)."""
    if not isinstance(link, str):
        return None
    try:
        parts = urlsplit(link.strip())
    except ValueError:
        return None
    if parts.scheme.lower() in SAFE_SCHEMES and parts.netloc:
        return link.strip()
    return None


def artifact_view(artifact: Artifact) -> ArtifactView:
    data = _decode(artifact.data)
    base: dict[str, Any] = {
        "id": artifact.id,
        "label": artifact.key or artifact.id[:8],
        "type": artifact.type,
        "description": artifact.description,
        "created": artifact.created,
    }
    if artifact.type == "markdown" and isinstance(data, str):
        return ArtifactView(**base, text=data)
    if artifact.type == "table":
        table = table_view(data)
        if table is not None:
            return ArtifactView(**base, table=table)
    if artifact.type == "link" and isinstance(data, dict):
        link = data.get("link")
        text = data.get("link_text")
        return ArtifactView(
            **base,
            href=safe_href(link),
            link_text=str(text) if text else None,
            text=str(link),
        )
    if artifact.type == "progress" and isinstance(data, int | float) and not isinstance(data, bool):
        return ArtifactView(**base, progress=max(0.0, min(100.0, float(data))))
    return ArtifactView(**base, text=json.dumps(data, indent=2))


def variable_row(variable: StoredVariable) -> dict[str, Any]:
    """A variable as the variables page lists it: its JSON value shortened."""
    return {
        "name": variable.name,
        "value": shorten(variable.value, VALUE_CHARS),
        "tags": variable.tags,
        "updated": variable.updated,
    }
