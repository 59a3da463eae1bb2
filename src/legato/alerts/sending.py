"""The ``send-notification`` action, with the groups and rate limits of alerts.

Every message goes through the outbox (`legato.notify.enqueue_message`) under an
idempotency key derived from the action row's key, so an action executed again
(the evaluator died before recording it done) enqueues nothing new.

Grouping (``group_window`` > 0): the first event of a group key opens a window
and its message is sent at once; later events of the window are folded into
the group's state (``alert_states``: count, the first few runs); when the
window ends the leader (`flush_due`, each evaluator step) sends ONE summary
saying how many events it stands for. A storm thus costs two messages a window
per group. A rate limit (``N/PERIOD`` per channel) holds back messages beyond
it (counted, their subjects kept) and reports them in the next message on that
channel, or in a summary of its own when the period lets one out: never dropped
silently. ``resolve_on`` events of a group with an open alert send a resolve
(PagerDuty ``resolve`` with the same ``dedup_key``; a "Resolved" message on the
others) and close the group.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from legato._event_records import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, Event
from legato.alerts.limits import parse_rate
from legato.alerts.rules import KINDS
from legato.automations.actions import ActionContext, register
from legato.automations.model import SendNotification, parse_action
from legato.notify import enqueue_message, render_message
from legato.notify.templates import event_context

if TYPE_CHECKING:
    from legato.store.base import Store

MAX_RUNS = 5  # runs listed in a summary
MAX_HELD = 5  # held-back subjects listed
RATE = "#rate:"
RECENT = 20  # event ids a group remembers, so an action executed again counts once


def _iso(value: datetime) -> str:
    return value.isoformat()


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _display(alert: str) -> str:
    return alert.removeprefix("alert:")


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


def match_problem(match: Mapping[str, str | list[str]], event: Event) -> str | None:
    """Why ``event`` fails one of the alert's ``match`` conditions (None: it passes)."""
    ids = {r.get(RESOURCE_ID) for r in event.related} | {event.resource_id}
    for kind, wanted in match.items():
        values = [wanted] if isinstance(wanted, str) else wanted
        if not any(f"{KINDS[kind]}{v}" in ids for v in values):
            return f"the event is not about {kind} {', '.join(values)}"
    return None


def _value(kind: str, event: Event) -> str | None:
    resource = event.resource
    if kind == "run":
        if event.resource_id.startswith("legato.flow-run."):
            return resource.get(RESOURCE_NAME) or event.resource_id.rpartition(".")[2]
        runs = [r for r in event.related if r.get("legato.resource.role") == "flow-run"]
        return runs[0][RESOURCE_ID].removeprefix("legato.flow-run.") if runs else None
    if kind == "worker":
        if event.resource_id.startswith("legato.worker."):
            return resource.get(RESOURCE_NAME) or event.resource_id.rpartition(".")[2]
        return None
    prefix = KINDS[kind]
    values = sorted(
        r[RESOURCE_ID].removeprefix(prefix)
        for r in event.related
        if r.get(RESOURCE_ID, "").startswith(prefix)
    )
    if values:
        return "+".join(values)
    found = event.payload.get(kind)
    return str(found) if isinstance(found, str) else None


def group_key(kinds: list[str], event: Event) -> str:
    """The group ``event`` falls into: ``kind=value`` for each ``group_by`` kind it has
    (the event's resource id when it has none)."""
    parts = [f"{k}={v}" for k in kinds if (v := _value(k, event)) is not None]
    return ",".join(parts) or event.resource_id


def with_run_resources(store: Store, event: Event) -> Event:
    """``event`` with its flow run's flow and deployment as related resources when it
    lacks them (task-run events name only the flow run), so ``match``, ``group_by`` and
    the template see them."""
    if any(r.get(RESOURCE_ROLE) == "flow" for r in event.related):
        return event
    runs = event.related_ids("flow-run")
    run = store.get_flow_run(runs[0].removeprefix("legato.flow-run.")) if runs else None
    if run is None:
        return event
    flow = {
        RESOURCE_ID: f"legato.flow.{run.flow_name}",
        RESOURCE_ROLE: "flow",
        RESOURCE_NAME: run.flow_name,
    }
    added = [flow]
    if run.deployment is not None:
        added.append(
            {
                RESOURCE_ID: f"legato.deployment.{run.deployment}",
                RESOURCE_ROLE: "deployment",
                RESOURCE_NAME: run.deployment,
            }
        )
    return replace(event, related=(*event.related, *added))


def _run_line(event: Event) -> str:
    names = event_context(event)
    what = names["run_name"] or names["run_id"] or event.resource.get(RESOURCE_NAME)
    line = f"{what or event.resource_id} ({names['state'] or event.event})"
    return f"{line} {names['run_url']}" if names["run_url"] else line


class _Alert:
    """One send-notification action of an automation, as it sends."""

    def __init__(self, store: Store, alert: str, index: str, action: SendNotification) -> None:
        self.store = store
        self.alert = alert
        self.index = index
        self.action = action

    def key(self, name: str) -> str:
        return f"{self.index}/{name}"

    def dedup(self, group: str) -> str:
        return f"legato:{self.alert}:{group}"

    # --- one message on one channel, through the rate limit -----------------------

    def send(
        self,
        channel: str,
        subject: str,
        body: str,
        key: str,
        payload: Mapping[str, Any],
        now: datetime,
    ) -> str:
        limits = self.action.rate_limit
        limit = limits.get(channel) or limits.get("*")
        group = str(payload.get("dedup_key") or "") or None
        if limit is None:
            enqueue_message(
                self.store,
                channel=channel,
                subject=subject,
                body=body,
                idempotency_key=key,
                payload=payload,
                group_key=group,
            )
            return "sent"
        count, period = parse_rate(limit)
        rate_key = self.key(f"{RATE}{channel}")
        stored = self.store.get_alert_state(self.alert, rate_key)
        data: dict[str, Any] = dict(stored.data) if stored else {}
        if data.get("last_key") == key:
            return "recorded before"
        sent = [t for t in data.get("sent", []) if _at(t) > now - period]
        held, subjects = int(data.get("held", 0)), list(data.get("subjects", []))
        if len(sent) >= count:
            data = {
                "sent": sent,
                "held": held + 1,
                "subjects": [*subjects, subject] if len(subjects) < MAX_HELD else subjects,
                "held_since": data.get("held_since") or _iso(now),
                "last_key": key,
            }
            free_at = min(_at(t) for t in sent) + period
            self.store.put_alert_state(self.alert, rate_key, data, expires_at=free_at, now=now)
            return f"held back by rate_limit {limit}"
        if held:
            more = f"\n…and {held - len(subjects)} more" if held > len(subjects) else ""
            note = (
                f"{held} earlier message(s) were held back by rate_limit {limit}:\n"
                + "\n".join(f"- {s}" for s in subjects)
                + more
            )
            body = f"{note}\n\n{body}" if body else note
        enqueue_message(
            self.store,
            channel=channel,
            subject=subject,
            body=body,
            idempotency_key=key,
            payload=payload,
            group_key=group,
        )
        data = {"sent": [*sent, _iso(now)], "held": 0, "subjects": [], "last_key": key}
        self.store.put_alert_state(self.alert, rate_key, data, expires_at=None, now=now)
        return "sent" + (f" with {held} held-back message(s)" if held else "")

    def send_all(
        self, subject: str, body: str, key: str, payload: Mapping[str, Any], now: datetime
    ) -> str:
        results = [
            f"{channel}: {self.send(channel, subject, body, f'{key}:{channel}', payload, now)}"
            for channel in self.action.channels
        ]
        return "; ".join(results)

    # --- groups ---------------------------------------------------------------------

    def summary(self, group: str, data: Mapping[str, Any], now: datetime) -> str:
        """The window of ``group`` ended with ``pending`` events folded: one message."""
        pending, count = int(data["pending"]), int(data["count"])
        runs = list(data.get("runs", []))
        event = str(data.get("event", "event"))
        window = self.action.group_window
        subject = (
            f"[{_display(self.alert)}] {pending} more {event} event(s) for {group} "
            f"within {_seconds(window)}"
        )
        lines = [
            f"{count} event(s) for {group} between {data['window_start']} and "
            f"{data.get('window_end')}: the first was sent at once, this message stands for "
            f"the other {pending}.",
            "Runs:",
            *(f"- {r}" for r in runs),
        ]
        if pending > len(runs):
            lines.append(f"…and {pending - len(runs)} more")
        payload = {
            "dedup_key": self.dedup(group),
            "alert": _display(self.alert),
            "group": group,
            "count": pending,
            "details": {"group": group, "count": pending, "runs": runs},
        }
        key = f"{self.alert}:{self.index}:{group}:{data['window_start']}:summary"
        return self.send_all(subject, "\n".join(lines), key, payload, now)

    def close(self, group: str, data: Mapping[str, Any], now: datetime) -> None:
        """The window of ``group`` is over: summarise what it folded, keep an open alert
        (for ``resolve_on``) or forget the group."""
        if data.get("pending"):
            self.summary(group, data, now)
        key = self.key(group)
        if self.action.resolve_on and data.get("active"):
            kept = {**data, "pending": 0, "runs": [], "window_end": None, "count": 0}
            self.store.put_alert_state(self.alert, key, kept, expires_at=None, now=now)
        else:
            self.store.delete_alert_state(self.alert, key)

    def on_event(self, event: Event, action_key: str, now: datetime) -> str:
        action = self.action
        problem = match_problem(action.match, event)
        if problem is not None:
            return f"not sent: {problem}"
        group = group_key(action.group_by, event)
        stored = self.store.get_alert_state(self.alert, self.key(group))
        data: dict[str, Any] | None = dict(stored.data) if stored else None
        if data is not None and event.id in data.get("recent", ()):
            return f"event {event.id} was recorded before"
        if event.event in action.resolve_on:
            return self.resolve(group, data, event, action_key, now)
        window_end = _at(data["window_end"]) if data and data.get("window_end") else None
        if data is not None and window_end is not None and now < window_end:
            runs = list(data.get("runs", []))
            if len(runs) < MAX_RUNS:
                runs.append(_run_line(event))
            data.update(
                count=int(data["count"]) + 1,
                pending=int(data["pending"]) + 1,
                runs=runs,
                recent=[*data.get("recent", [])[-RECENT + 1 :], event.id],
            )
            self.store.put_alert_state(
                self.alert, self.key(group), data, expires_at=window_end, now=now
            )
            return f"grouped into {group} ({data['count']} event(s) in this window)"
        if data is not None and data.get("pending"):
            self.close(group, data, now)  # the previous window's summary goes first
        subject, body = render_message(event, action.template)
        names = event_context(event)
        payload = {
            "dedup_key": self.dedup(group),
            "alert": _display(self.alert),
            "group": group,
            "count": 1,
            "event_id": event.id,
            "details": {
                "event": event.event,
                "group": group,
                "flow": names["flow"],
                "run_id": names["run_id"],
                "state": names["state"],
            },
        }
        result = self.send_all(subject, body, action_key, payload, now)
        window = action.group_window
        if window > timedelta(0) or action.resolve_on:
            ends = now + window if window > timedelta(0) else None
            state: dict[str, Any] = {
                "group": group,
                "event": event.event,
                "window_start": _iso(now),
                "window_end": _iso(ends) if ends else None,
                "count": 1,
                "pending": 0,
                "runs": [],
                "active": True,
                "recent": [event.id],
            }
            self.store.put_alert_state(self.alert, self.key(group), state, expires_at=ends, now=now)
        return result

    def resolve(
        self, group: str, data: dict[str, Any] | None, event: Event, action_key: str, now: datetime
    ) -> str:
        if data is None or not data.get("active"):
            return f"nothing to resolve for {group}"
        if data.get("pending"):
            self.summary(group, data, now)
        subject = f"[{_display(self.alert)}] Resolved for {group}"
        body = f"{event.event}: {_run_line(event)}"
        payload = {"action": "resolve", "dedup_key": self.dedup(group), "group": group}
        for channel in self.action.channels:  # a resolve is never held back
            enqueue_message(
                self.store,
                channel=channel,
                subject=subject,
                body=body,
                idempotency_key=f"{action_key}:{channel}",
                payload=payload,
                group_key=self.dedup(group),
            )
        self.store.delete_alert_state(self.alert, self.key(group))
        return f"resolved {group} on {', '.join(self.action.channels)}"

    def release_held(self, channel: str, data: Mapping[str, Any], now: datetime) -> None:
        """A channel's rate-limit period lets a message out: report the held ones."""
        held = int(data.get("held", 0))
        if not held:
            self.store.put_alert_state(
                self.alert, self.key(f"{RATE}{channel}"), data, expires_at=None, now=now
            )
            return
        limit = self.action.rate_limit.get(channel) or self.action.rate_limit.get("*")
        subject = f"[{_display(self.alert)}] {held} message(s) were held back by rate_limit {limit}"
        key = f"{self.alert}:{self.index}:held:{channel}:{data.get('held_since')}"
        self.send(channel, subject, "", key, {"alert": _display(self.alert)}, now)


@register("send-notification")
def send_notification(ctx: ActionContext, action: SendNotification) -> str:
    store = ctx.client.store
    alert = _Alert(store, str(ctx.automation["name"]), ctx.key.rpartition(":")[2], action)
    now = store.clock()
    if ctx.event is None:  # a firing without events (a Proactive trigger)
        subject = f"[{_display(alert.alert)}] {ctx.firing.get('reason', 'fired')}"
        return alert.send_all(subject, "", ctx.key, {"alert": _display(alert.alert)}, now)
    return alert.on_event(with_run_resources(store, ctx.event), ctx.key, now)


def _actions_of(store: Store, name: str) -> list[Any] | None:
    stored = store.get_automation(name)
    if stored is None:
        return None
    return [parse_action(json.dumps(a)) for a in json.loads(stored.spec)["actions"]]


def flush_due(store: Store, *, limit: int = 100) -> int:
    """Close the group windows that ended and release held-back messages whose period
    lets them out (called by the leader each evaluator step); how many states."""
    now = store.clock()
    due = store.due_alert_states(now, limit=limit)
    specs: dict[str, list[Any] | None] = {}
    for state in due:
        if state.alert not in specs:
            specs[state.alert] = _actions_of(store, state.alert)
        actions = specs[state.alert]
        index, _, name = state.key.partition("/")
        found = actions or []
        action = found[int(index)] if index.isdigit() and int(index) < len(found) else None
        if not isinstance(action, SendNotification):
            store.delete_alert_state(state.alert, state.key)  # its alert is gone
            continue
        alert = _Alert(store, state.alert, index, action)
        if name.startswith(RATE):
            alert.release_held(name.removeprefix(RATE), state.data, now)
        else:
            alert.close(name, state.data, now)
    return len(due)
