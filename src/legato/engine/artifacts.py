"""Artifacts: markdown, tables, links and progress a run publishes, kept in the store.

An artifact made inside a run belongs to that flow run (and to the task run
making it). Its id comes from the run, the task run's attempt and the call's
place in its scope, so a flow body replayed on resume makes the same ids and
the store keeps one copy; outside a run the id is random. A progress artifact
is the one kind that changes after it is made (`update_artifact`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from typing import Any

from legato.engine.context import FLOW_CONTEXT, TASK_CONTEXT, current_scope
from legato.engine.ids import new_id
from legato.errors import InvalidArtifactError
from legato.records import Artifact, utcnow
from legato.store.base import Store

MAX_DATA_CHARS = 1_000_000
MAX_DESCRIPTION_CHARS = 10_000
MAX_KEY_CHARS = 255
_KEY = re.compile(r"[a-z0-9-]+")
TYPES = ("markdown", "table", "link", "progress")


def check_key(key: object) -> str | None:
    """``key`` when it is None or a valid artifact key; `InvalidArtifactError` otherwise."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise InvalidArtifactError(
            f"an artifact key must be a str, not {type(key).__name__}; e.g. 'daily-report'"
        )
    if not key or len(key) > MAX_KEY_CHARS or _KEY.fullmatch(key) is None:
        shown = key if len(key) <= 60 else key[:57] + "..."
        raise InvalidArtifactError(
            f"invalid artifact key {shown!r}: use 1 to {MAX_KEY_CHARS} lowercase letters, "
            "digits and dashes, e.g. 'daily-report'"
        )
    return key


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` with non-finite floats as None (a table cell JSON cannot hold)."""
    if depth > 100:
        raise InvalidArtifactError("an artifact's data is nested more than 100 levels deep")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_plain(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {str(k): _plain(item, depth + 1) for k, item in value.items()}
    return value


def check_table(table: object) -> Any:
    """A table as Prefect takes one: a dict of columns (lists), a list of rows (dicts),
    or a list of lists. Cells that are not JSON are shown as their text."""
    if isinstance(table, dict):
        if not all(isinstance(column, list | tuple) for column in table.values()):
            raise InvalidArtifactError(
                "a table given as a dict must map each column name to a list of its "
                "values, e.g. {'name': ['a', 'b'], 'count': [1, 2]}"
            )
    elif isinstance(table, list | tuple):
        if not (
            all(isinstance(row, dict) for row in table)
            or all(isinstance(row, list | tuple) for row in table)
        ):
            raise InvalidArtifactError(
                "a table given as a list must hold rows that are all dicts "
                "([{'name': 'a', 'count': 1}]) or all lists ([['a', 1]])"
            )
    else:
        raise InvalidArtifactError(
            f"a table must be a dict of columns or a list of rows, not {type(table).__name__}"
        )
    return _plain(table)


def _text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidArtifactError(f"{what} must be a str, not {type(value).__name__}")
    return value


def _artifact_id(kind: str) -> tuple[str, str | None, str | None]:
    """(id, flow run id, task run id) for an artifact made here and now."""
    flow_ctx = FLOW_CONTEXT.get()
    if flow_ctx is None:
        return str(uuid.UUID(hex=new_id())), None, None
    task_ctx = TASK_CONTEXT.get()
    if task_ctx is not None and task_ctx.flow_ctx is not flow_ctx:
        task_ctx = None
    place = current_scope(flow_ctx).next_key("legato-artifact")
    task_run_id = task_ctx.task_run_id if task_ctx is not None else None
    attempt = task_ctx.attempt if task_ctx is not None else 0
    seed = f"{flow_ctx.run.id}\0{task_run_id or ''}\0{attempt}\0{place}\0{kind}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:32]
    return str(uuid.UUID(hex=digest)), flow_ctx.run.id, task_run_id


def _store() -> Store:
    flow_ctx = FLOW_CONTEXT.get()
    if flow_ctx is not None:
        return flow_ctx.store
    from legato.store import get_default_store

    return get_default_store()


def _check_description(description: object) -> None:
    if description is not None:
        text = _text("an artifact's description", description)
        if len(text) > MAX_DESCRIPTION_CHARS:
            raise InvalidArtifactError(
                f"an artifact's description is {len(text)} characters, more than "
                f"{MAX_DESCRIPTION_CHARS}; put long text in the artifact itself"
            )


def create_artifact(kind: str, data: Any, key: str | None, description: str | None) -> uuid.UUID:
    """Store an artifact of ``kind`` made here (in the current run, if any); its id."""
    check_key(key)
    _check_description(description)
    text = json.dumps(data, default=str, allow_nan=False)
    if len(text) > MAX_DATA_CHARS:
        raise InvalidArtifactError(
            f"the {kind} artifact{f' {key!r}' if key else ''} is {len(text)} characters as "
            f"JSON, more than {MAX_DATA_CHARS}; keep large data in a file or a result and "
            "link to it"
        )
    artifact_id, flow_run_id, task_run_id = _artifact_id(kind)
    _store().create_artifact(
        Artifact(
            id=artifact_id,
            key=key,
            type=kind,
            data=text,
            description=description,
            flow_run_id=flow_run_id,
            task_run_id=task_run_id,
            created=utcnow(),
        )
    )
    return uuid.UUID(artifact_id)


def markdown_data(markdown: object) -> str:
    return _text("the markdown of an artifact", markdown)


def link_data(link: object, link_text: object) -> dict[str, str | None]:
    text = None if link_text is None else _text("the link_text of an artifact", link_text)
    return {"link": _text("the link of an artifact", link), "link_text": text}


def progress_data(progress: object) -> float:
    """``progress`` as a percentage: a number from 0 to 100."""
    if isinstance(progress, bool) or not isinstance(progress, int | float):
        raise InvalidArtifactError(
            f"an artifact's progress must be a number from 0 to 100, not {type(progress).__name__}"
        )
    if not (math.isfinite(progress) and 0 <= progress <= 100):
        raise InvalidArtifactError(
            f"an artifact's progress must be a number from 0 to 100 (a percentage), "
            f"not {progress!r}"
        )
    return float(progress)


def update_progress(artifact_id: object, progress: object, description: str | None) -> uuid.UUID:
    """Set the progress (and the description, when given) of a progress artifact."""
    try:
        found = artifact_id if isinstance(artifact_id, uuid.UUID) else uuid.UUID(str(artifact_id))
    except ValueError:
        raise InvalidArtifactError(
            f"{artifact_id!r} is not an artifact id; pass the id create_progress_artifact returned"
        ) from None
    data = json.dumps(progress_data(progress))
    _check_description(description)
    if not _store().update_artifact(
        str(found), type="progress", data=data, description=description
    ):
        raise InvalidArtifactError(
            f"there is no progress artifact with id {found}; pass the id "
            "create_progress_artifact returned"
        )
    return found
