"""Matching events to triggers: label checks, and the index the evaluator uses.

The index finds the automations an event may concern without looking at every
automation: by exact event name, by name prefix (each prefix length of the
event's name is one dict lookup), then by resource id when the trigger pins one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from legato._event_records import RESOURCE_ID, Event
from legato.automations.model import Automation, EventTrigger, LabelValue, MetricTrigger

EXPECT, AFTER = "expect", "after"


def label_problem(labels: Mapping[str, str], wanted: Mapping[str, LabelValue]) -> str | None:
    """Why ``labels`` do not satisfy ``wanted`` (None: they do). A wanted value may
    be a list (any of them) and may end in ``*`` (a prefix)."""
    for name, value in wanted.items():
        have = labels.get(name)
        options = [value] if isinstance(value, str) else value
        if have is None or not any(_value_matches(have, option) for option in options):
            return f"label {name}={have!r} does not match {value!r}"
    return None


def _value_matches(have: str, option: str) -> bool:
    if option.endswith("*"):
        return have.startswith(option[:-1])
    return have == option


def name_matches(name: str, patterns: list[str]) -> bool:
    return any(_value_matches(name, p) for p in patterns)


def trigger_problem(trigger: EventTrigger, event: Event) -> str | None:
    """Why the event's resources do not match the trigger (None: they do)."""
    problem = label_problem(event.resource, trigger.match)
    if problem is not None:
        return f"resource: {problem}"
    if trigger.match_related:
        problems = [label_problem(r, trigger.match_related) for r in event.related]
        if not problems or all(p is not None for p in problems):
            found = problems[0] if problems else "the event has no related resources"
            return f"no related resource matches match_related ({found})"
    return None


def bucket_key(trigger: EventTrigger, event: Event) -> str:
    """The bucket of ``event``: the values of the ``for_each`` labels, looked up on the
    event's resource, else on the related resource that matched ``match_related``."""
    if not trigger.for_each:
        return ""
    values = []
    related = [r for r in event.related if label_problem(r, trigger.match_related) is None]
    for name in trigger.for_each:
        value = event.resource.get(name)
        if value is None:
            value = next((r[name] for r in related if name in r), "")
        values.append(value)
    return json.dumps(values, separators=(",", ":"))


@dataclass(slots=True)
class _Entries:
    anywhere: list[tuple[Automation, str]] = field(default_factory=list)
    by_resource: dict[str, list[tuple[Automation, str]]] = field(default_factory=dict)


def event_trigger(automation: Automation) -> EventTrigger:
    """The automation's event trigger (every indexed part has one)."""
    trigger = automation.trigger
    if not isinstance(trigger, EventTrigger):
        raise TypeError(f"automation '{automation.name}' has a {trigger.type} trigger")
    return trigger


def _pinned_id(trigger: EventTrigger) -> str | None:
    """The one exact resource id the trigger requires (of the event or a related one)."""
    for labels in (trigger.match, trigger.match_related):
        value = labels.get(RESOURCE_ID)
        if isinstance(value, str) and not value.endswith("*"):
            return value
    return None


class TriggerIndex:
    """The enabled automations by the event names they listen for."""

    def __init__(self, automations: Mapping[str, Automation]) -> None:
        """``automations`` by automation id. The triggers of a compound or sequence
        trigger are indexed as parts, ``<id>#<n>`` (named ``<name>#<n>``), in
        ``automations``; the whole is in ``composites``."""
        self.automations: dict[str, Automation] = {}
        self.composites: dict[str, Automation] = {}
        for aid, automation in automations.items():
            if isinstance(automation.trigger, EventTrigger):
                self.automations[aid] = automation
                continue
            if isinstance(automation.trigger, MetricTrigger):
                continue  # measured from the run tables (`legato.automations.metrics`)
            self.composites[aid] = automation
            for n, part in enumerate(automation.trigger.triggers):
                self.automations[f"{aid}#{n}"] = automation.model_copy(
                    update={"name": f"{automation.name}#{n}", "trigger": part}
                )
        self.ids = {a.name: i for i, a in self.automations.items()}
        self._exact: dict[str, _Entries] = {}
        self._prefix: dict[str, _Entries] = {}
        for automation in self.automations.values():
            trigger = event_trigger(automation)
            pinned = _pinned_id(trigger)
            for role, patterns in ((EXPECT, trigger.expect or ["*"]), (AFTER, trigger.after)):
                for pattern in patterns:
                    table = self._prefix if pattern.endswith("*") else self._exact
                    entries = table.setdefault(pattern.removesuffix("*"), _Entries())
                    if pinned is None:
                        entries.anywhere.append((automation, role))
                    else:
                        entries.by_resource.setdefault(pinned, []).append((automation, role))

    def candidates(self, event: Event) -> Iterator[tuple[Automation, str]]:
        """(automation, "expect" | "after") pairs the event may concern, each once."""
        name = event.event
        tables = [self._exact.get(name)]
        tables += [self._prefix.get(name[:n]) for n in range(len(name) + 1)]
        ids = [event.resource_id, *event.related_ids()]
        seen: set[tuple[str, str]] = set()
        for entries in tables:
            if entries is None:
                continue
            found = list(entries.anywhere)
            for rid in ids:
                found += entries.by_resource.get(rid, ())
            for automation, role in found:
                if (automation.name, role) not in seen:
                    seen.add((automation.name, role))
                    yield automation, role
