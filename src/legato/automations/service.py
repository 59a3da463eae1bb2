"""Applying, listing and explaining automations (used by the CLI and the REST API)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from legato._automation_records import Bucket, Firing, StoredAutomation
from legato._event_records import Event
from legato.automations.matching import name_matches, trigger_problem
from legato.automations.model import (
    Automation,
    EventTrigger,
    MetricTrigger,
    Posture,
    parse_automation,
)
from legato.engine.ids import new_id
from legato.errors import AutomationNotFoundError, InvalidAutomationError
from legato.records import utcnow

if TYPE_CHECKING:
    from legato.store.base import Store


def parse_many(data: Any, *, where: str = "") -> list[Automation]:
    """Automations from a YAML/JSON document: a list of them (or ``{automations: [...]}``)."""
    if isinstance(data, dict) and "automations" in data:
        data, where = data["automations"], f"{where}automations"
    if not isinstance(data, list):
        raise InvalidAutomationError(
            f"{where or 'the document'}: expected a list of automations, got {type(data).__name__}"
        )
    found = [parse_automation(item, where=f"{where}[{i}]") for i, item in enumerate(data)]
    names = [a.name for a in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidAutomationError(f"automation names appear twice: {', '.join(duplicates)}")
    return found


def load_yaml(text: str) -> list[Automation]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidAutomationError(f"not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_many(data)


def spec_json(automation: Automation) -> str:
    return automation.model_dump_json(exclude={"enabled"})


def apply(store: Store, automations: list[Automation]) -> list[tuple[StoredAutomation, bool]]:
    """Create or update each by name; (stored, created now) for each."""
    applied = []
    for automation in automations:
        existed = store.get_automation(automation.name) is not None
        stored = store.save_automation(
            new_id(),
            automation.name,
            spec_json(automation),
            enabled=automation.enabled,
            now=utcnow(),
        )
        applied.append((stored, not existed))
    return applied


def get(store: Store, name: str) -> tuple[StoredAutomation, Automation]:
    stored = store.get_automation(name)
    if stored is None:
        raise AutomationNotFoundError(name)
    data = json.loads(stored.spec)
    return stored, parse_automation({**data, "enabled": stored.enabled})


def set_enabled(store: Store, name: str, enabled: bool) -> None:
    if not store.set_automation_enabled(name, enabled, now=utcnow()):
        raise AutomationNotFoundError(name)


def delete(store: Store, name: str) -> None:
    if not store.delete_automation(name):
        raise AutomationNotFoundError(name)


def summary(store: Store, stored: StoredAutomation) -> dict[str, Any]:
    """One automation as JSON-ready data, with its last firing."""
    data = json.loads(stored.spec)
    last = store.list_firings(stored.id, limit=1)
    return {
        "name": stored.name,
        "description": data.get("description", ""),
        "enabled": stored.enabled,
        "trigger": data.get("trigger"),
        "actions": data.get("actions"),
        "created": stored.created.isoformat(),
        "updated": stored.updated.isoformat(),
        "last_fired": last[0].fired_at.isoformat() if last else None,
    }


def _bucket(bucket: Bucket) -> dict[str, Any]:
    return {
        "key": bucket.key,
        "opened_at": bucket.opened_at.isoformat(),
        "count": bucket.count,
        "event_ids": list(bucket.event_ids),
        "expires_at": bucket.expires_at.isoformat() if bucket.expires_at else None,
    }


def _firing(store: Store, firing: Firing) -> dict[str, Any]:
    events = []
    for event_id in firing.event_ids:
        event = store.get_event(event_id)
        events.append(
            {"id": event_id, "event": event.event, "resource_id": event.resource_id}
            if event is not None
            else {"id": event_id, "event": None, "resource_id": None}
        )
    return {
        "id": firing.id,
        "fired_at": firing.fired_at.isoformat(),
        "reason": firing.reason,
        "bucket": firing.bucket_key,
        "events": events,
        "actions": [
            {
                "index": a.index,
                "idempotency_key": a.idempotency_key,
                "type": json.loads(a.spec)["action"]["type"],
                "state": a.state,
                "attempts": a.attempts,
                "result": a.result,
            }
            for a in firing.actions
        ],
    }


def explain(
    store: Store, name: str, *, event_id: str | None = None, limit: int = 20
) -> dict[str, Any]:
    """Its buckets, recent firings with their events and action states, and, for
    ``event_id``, whether that event matched the trigger and why not."""
    stored, automation = get(store, name)
    report = summary(store, stored)
    report["firing_count"] = store.count_firings(stored.id)
    report["buckets"] = [_bucket(b) for b in store.list_buckets(stored.id)]
    report["firings"] = [_firing(store, f) for f in store.list_firings(stored.id, limit=limit)]
    if event_id is not None:
        report["event"] = {"id": event_id, **_event_match(store, stored, automation, event_id)}
    return report


def _part_problems(trigger: EventTrigger, event: Event) -> tuple[list[str], str]:
    """Why ``event`` does not match the event trigger, and what it would be to it."""
    reasons = []
    expected = not trigger.expect or name_matches(event.event, trigger.expect)
    opens = bool(trigger.after) and name_matches(event.event, trigger.after)
    if not expected and not opens:
        names = trigger.expect + trigger.after
        reasons.append(f"event name {event.event!r} is not one of {names}")
    problem = trigger_problem(trigger, event)
    if problem is not None:
        reasons.append(problem)
    role = "expected" if expected else "opens a window"
    if trigger.posture is Posture.PROACTIVE and expected:
        role = "expected (it keeps the Proactive trigger from firing)"
    return reasons, role


def _event_match(
    store: Store, stored: StoredAutomation, automation: Automation, event_id: str
) -> dict[str, Any]:
    event = store.get_event(event_id)
    if event is None:
        return {"matched": False, "why": f"no event with id {event_id} is stored"}
    trigger = automation.trigger
    if isinstance(trigger, MetricTrigger):
        reasons, role = ["a metric trigger measures the run tables; it matches no event"], ""
    elif isinstance(trigger, EventTrigger):
        reasons, role = _part_problems(trigger, event)
    else:  # a compound or sequence: the event matches when it matches a part
        parts = [_part_problems(t, event) for t in trigger.triggers]
        matching = [n for n, (problems, _) in enumerate(parts) if not problems]
        reasons = (
            [] if matching else [f"trigger {n}: {'; '.join(p)}" for n, (p, _) in enumerate(parts)]
        )
        role = f"{parts[matching[0]][1]} by trigger {matching[0]}" if matching else ""
    if event.received is not None and event.received < stored.created:
        reasons.append("the event was received before the automation was created")
    if not stored.enabled:
        reasons.append("the automation is paused")
    firings = [f.id for f in store.list_firings(stored.id, limit=200) if event_id in f.event_ids]
    return {
        "event": event.event,
        "matched": not reasons,
        "role": role if not reasons else None,
        "why": "; ".join(reasons) if reasons else "it matches",
        "firings": firings,
    }
