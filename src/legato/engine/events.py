"""Events made by code: checked and completed here, then stored.

`emit_event` takes Prefect's names and shapes. The checks give each problem a
clear error before the store sees anything; an event made inside a flow or task
run names that run (and its flow) among its related resources, as Prefect's do.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from legato import _clock
from legato._event_records import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, Event
from legato.errors import InvalidEventError
from legato.store.base import Store

MAX_NAME_CHARS = 1024
MAX_ID_CHARS = 200
MAX_LABELS = 100
MAX_LABEL_KEY_CHARS = 256
MAX_LABEL_VALUE_CHARS = 1024
MAX_RELATED = 100
MAX_PAYLOAD_BYTES = 256 * 1024
_PREFECT_PREFIX = "prefect."


def _labels(labels: object, what: str, *, need_role: bool) -> dict[str, str]:
    if not isinstance(labels, Mapping):
        raise InvalidEventError(
            f"{what} must be a dict of labels like "
            f'{{"{RESOURCE_ID}": "my.thing.42"}}, not {type(labels).__name__}'
        )
    if len(labels) > MAX_LABELS:
        raise InvalidEventError(f"{what} has {len(labels)} labels; at most {MAX_LABELS} allowed")
    checked: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidEventError(
                f"{what}: label {key!r} must map a str to a str, not "
                f"{type(key).__name__} to {type(value).__name__}"
            )
        if not _storable(key) or not _storable(value):
            raise InvalidEventError(
                f"{what}: label {key[:40]!r} holds a NUL character or a lone surrogate, which "
                "no store can keep; remove it"
            )
        if key.startswith(_PREFECT_PREFIX):  # Prefect's label names are accepted as aliases
            key = "legato." + key[len(_PREFECT_PREFIX) :]
        if not key or len(key) > MAX_LABEL_KEY_CHARS:
            raise InvalidEventError(
                f"{what}: label names are 1 to {MAX_LABEL_KEY_CHARS} characters; got {key[:40]!r}"
            )
        if len(value) > MAX_LABEL_VALUE_CHARS:
            raise InvalidEventError(
                f"{what}: label {key!r} is {len(value)} characters; at most "
                f"{MAX_LABEL_VALUE_CHARS} allowed"
            )
        checked[key] = value
    if not checked.get(RESOURCE_ID):
        raise InvalidEventError(
            f'{what} needs a "{RESOURCE_ID}" label naming the resource, e.g. '
            f'{{"{RESOURCE_ID}": "warehouse.table.orders"}}'
        )
    if need_role and not checked.get(RESOURCE_ROLE):
        raise InvalidEventError(
            f'{what} needs a "{RESOURCE_ROLE}" label saying how it relates, e.g. "upstream"'
        )
    return checked


def _storable(text: str) -> bool:
    """Text every backend keeps: no NUL (PostgreSQL text cannot hold it), valid UTF-8."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _check_name(event: object) -> str:
    if not isinstance(event, str) or not event.strip():
        raise InvalidEventError(
            f"an event name must be a non-empty str like 'warehouse.table.refreshed', not {event!r}"
        )
    if (
        len(event) > MAX_NAME_CHARS
        or any(c.isspace() or not c.isprintable() for c in event)
        or not _storable(event)
    ):
        raise InvalidEventError(
            f"invalid event name {event[:60]!r}: use up to {MAX_NAME_CHARS} printable "
            "characters without spaces, e.g. 'warehouse.table.refreshed'"
        )
    return event


def _check_payload(payload: object) -> dict[str, Any]:
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise InvalidEventError(
            f"an event payload must be a dict, not {type(payload).__name__}; wrap the value: "
            "payload={'value': ...}"
        )
    try:
        text = json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(
            f"the event payload is not JSON ({exc}); use str, int, float, bool, None, lists "
            "and dicts with str keys"
        ) from None
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise InvalidEventError(
            f"the event payload is {len(text.encode())} bytes of JSON; at most "
            f"{MAX_PAYLOAD_BYTES} allowed: store big data elsewhere and put its location here"
        )
    decoded: dict[str, Any] = json.loads(text)
    return decoded


def _check_time(occurred: object) -> datetime:
    if occurred is None:
        return _clock.now()
    if not isinstance(occurred, datetime):
        raise InvalidEventError(f"occurred must be a datetime, not {type(occurred).__name__}")
    if occurred.tzinfo is None:
        return occurred.replace(tzinfo=UTC)
    return occurred.astimezone(UTC)


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
        raise InvalidEventError(
            f"{what} must be a str of 1 to {MAX_ID_CHARS} characters, not {value!r}"
        )
    return value


def build_event(
    event: object,
    resource: object,
    related: Iterable[object] | None = (),
    payload: object = None,
    *,
    id: object = None,
    occurred: object = None,
    follows: object = None,
    context_related: Iterable[Mapping[str, str]] = (),
) -> Event:
    """A checked Event (or `InvalidEventError` saying what is wrong)."""
    name = _check_name(event)
    labels = _labels(resource, "the event's resource", need_role=False)
    if related is None:
        related = ()
    if isinstance(related, Mapping | str | bytes):
        raise InvalidEventError("related must be a list of label dicts, one per resource")
    others = [
        _labels(one, f"related resource #{i + 1}", need_role=True) for i, one in enumerate(related)
    ]
    named = {r[RESOURCE_ID] for r in others}
    for extra in context_related:
        if extra[RESOURCE_ID] not in named and extra[RESOURCE_ID] != labels[RESOURCE_ID]:
            others.append(dict(extra))
    if len(others) > MAX_RELATED:
        raise InvalidEventError(
            f"an event names {len(others)} related resources; at most {MAX_RELATED} allowed"
        )
    return Event(
        id=uuid.uuid4().hex if id is None else _check_id(id, "an event id"),
        event=name,
        occurred=_check_time(occurred),
        resource=labels,
        related=tuple(others),
        payload=_check_payload(payload),
        follows=None if follows is None else _check_id(follows, "follows"),
    )


def run_related() -> list[dict[str, str]]:
    """The current flow run, its flow and task run as related resources (none outside)."""
    from legato.engine.context import FLOW_CONTEXT, TASK_CONTEXT

    flow_ctx = FLOW_CONTEXT.get()
    if flow_ctx is None:
        return []
    run = flow_ctx.run
    found = [
        {
            RESOURCE_ID: f"legato.flow-run.{run.id}",
            RESOURCE_ROLE: "flow-run",
            RESOURCE_NAME: run.name,
        },
        {
            RESOURCE_ID: f"legato.flow.{run.flow_name}",
            RESOURCE_ROLE: "flow",
            RESOURCE_NAME: run.flow_name,
        },
    ]
    task_ctx = TASK_CONTEXT.get()
    if task_ctx is not None and task_ctx.flow_ctx is flow_ctx:
        found.append(
            {
                RESOURCE_ID: f"legato.task-run.{task_ctx.task_run_id}",
                RESOURCE_ROLE: "task-run",
                RESOURCE_NAME: task_ctx.call_key,
            }
        )
    return found


def store_for_events() -> Store:
    from legato.engine.context import FLOW_CONTEXT

    flow_ctx = FLOW_CONTEXT.get()
    if flow_ctx is not None:
        return flow_ctx.store
    from legato.store import get_default_store

    return get_default_store()
