"""Deadlines of flow runs (`legato.Deadline`): "this run must be done within N of
its scheduled time (or of its start)". Stored per run; the leader's sweep emits
``legato.flow-run.deadline-missed`` once per run and deadline, and with
``action="cancel"`` also asks the run to cancel (see docs/architecture.md, "Sweeps").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from legato.errors import ConfigurationError

Reference = Literal["scheduled", "started"]
Action = Literal["alert", "cancel"]
REFERENCES: tuple[str, ...] = ("scheduled", "started")
ACTIONS: tuple[str, ...] = ("alert", "cancel")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


@dataclass(frozen=True, slots=True)
class Deadline:
    """A run must reach a final state ``within`` of its ``reference`` time: its
    scheduled time (its creation for a run called directly) or its start. When it
    does not, ``legato.flow-run.deadline-missed`` is emitted; ``action="cancel"``
    also cancels the run."""

    within: timedelta
    reference: Reference = "scheduled"
    action: Action = "alert"

    def __post_init__(self) -> None:
        if not isinstance(self.within, timedelta) or self.within <= timedelta(0):
            raise ConfigurationError(
                f"Deadline(within=...) must be a positive timedelta, e.g. "
                f"timedelta(hours=1); got {self.within!r}"
            )
        if self.reference not in REFERENCES:
            raise ConfigurationError(
                f"Deadline reference must be 'scheduled' or 'started', not {self.reference!r}"
            )
        if self.action not in ACTIONS:
            raise ConfigurationError(
                f"Deadline action must be 'alert' or 'cancel', not {self.action!r}"
            )


@dataclass(frozen=True, slots=True)
class RunDeadline:
    """One deadline of one run, as stored. ``due_at`` is None until the reference
    time is known (a "started" deadline before the start) and after the run ended
    unfired; ``fired_at`` is set once, when the deadline was missed."""

    run_id: str
    index: int
    reference: str
    within_seconds: float
    action: str
    due_at: datetime | None = None
    fired_at: datetime | None = None


def check_deadlines(deadlines: object, what: str) -> tuple[Deadline, ...]:
    """``deadlines`` as a tuple of Deadline, or a ConfigurationError naming ``what``."""
    if deadlines is None:
        return ()
    if isinstance(deadlines, Deadline):
        deadlines = [deadlines]
    if isinstance(deadlines, str | bytes) or not hasattr(deadlines, "__iter__"):
        raise ConfigurationError(
            f"{what}: deadlines must be a list of legato.Deadline, not {type(deadlines).__name__}"
        )
    found = tuple(deadlines)
    for one in found:
        if not isinstance(one, Deadline):
            raise ConfigurationError(
                f"{what}: deadlines must be legato.Deadline(...) objects, got {one!r}"
            )
    return found


def parse_deadline(text: str) -> Deadline:
    """``1h``, ``30m:started``, ``2h:scheduled:cancel`` (span with unit s, m, h or d,
    then optionally the reference and the action) as a Deadline."""
    parts = text.strip().split(":")
    match = _SPAN.match(parts[0].strip())
    if match is None or len(parts) > 3:
        raise ConfigurationError(
            f"deadline {text!r} is not SPAN[:scheduled|started][:alert|cancel], e.g. "
            f"'1h', '30m:started', '2h:scheduled:cancel'"
        )
    within = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    reference, action = "scheduled", "alert"
    for part in (p.strip() for p in parts[1:]):
        if part in REFERENCES:
            reference = part
        elif part in ACTIONS:
            action = part
        else:
            raise ConfigurationError(
                f"deadline {text!r}: {part!r} is neither a reference (scheduled, started) "
                f"nor an action (alert, cancel)"
            )
    return Deadline(within=within, reference=reference, action=action)  # type: ignore[arg-type]


def run_deadlines(
    run_id: str,
    deadlines: tuple[Deadline, ...],
    *,
    scheduled: datetime,
    started: datetime | None = None,
) -> list[RunDeadline]:
    """The rows to store for a run: a "scheduled" deadline is due ``within`` after
    ``scheduled``; a "started" one after ``started`` (None: armed when it starts)."""
    rows = []
    for index, one in enumerate(deadlines):
        base = scheduled if one.reference == "scheduled" else started
        rows.append(
            RunDeadline(
                run_id=run_id,
                index=index,
                reference=one.reference,
                within_seconds=one.within.total_seconds(),
                action=one.action,
                due_at=None if base is None else base + one.within,
            )
        )
    return rows


def deadlines_to_json(deadlines: tuple[Deadline, ...]) -> str | None:
    """Deadlines as stored with a deployment (None for none)."""
    if not deadlines:
        return None
    return json.dumps(
        [
            {"within": d.within.total_seconds(), "reference": d.reference, "action": d.action}
            for d in deadlines
        ]
    )


def deadlines_from_json(text: str | None) -> tuple[Deadline, ...]:
    if not text:
        return ()
    return tuple(
        Deadline(
            within=timedelta(seconds=float(one["within"])),
            reference=one["reference"],
            action=one["action"],
        )
        for one in json.loads(text)
    )
