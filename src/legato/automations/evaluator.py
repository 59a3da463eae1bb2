"""The automation evaluator: events in, firings out, each exactly once.

A step (1) reads the stored cursor and the events after it, (2) matches them in
memory against the index of enabled automations and advances the buckets they
touch, firing or closing buckets whose window ended, (3) writes all of it with
the cursor move in one `commit_evaluation` (compare-and-set on the cursor: when
another evaluator moved it, nothing is written and the step reads again), then
(4) executes the pending action rows. See docs/architecture.md, "Automations".
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from legato._automation_records import ActionRow, Bucket, Evaluation, Firing
from legato._event_records import Event
from legato.alerts import call_webhook as _call_webhook  # noqa: F401 (registers its action)
from legato.alerts.sending import flush_due as flush_due_alerts
from legato.automations import metrics
from legato.automations.actions import ACTIONS, ActionContext
from legato.automations.matching import (
    EXPECT,
    TriggerIndex,
    bucket_key,
    event_trigger,
    trigger_problem,
)
from legato.automations.model import (
    Automation,
    CompoundTrigger,
    MetricTrigger,
    Posture,
    SequenceTrigger,
    parse_action,
    parse_automation,
)
from legato.engine.ids import new_sortable_id
from legato.errors import LegatoError
from legato.store.base import as_utc

if TYPE_CHECKING:
    from legato.client import Client

EVALUATOR = "default"
BATCH = 500
MAX_EVENT_IDS = 20  # kept per bucket and firing (the first ones)
MAX_ATTEMPTS = 5
COMMIT_RETRIES = 10
ACTION_BATCH = 100  # action rows run a step

_logger = logging.getLogger("legato.automations")


@dataclass(frozen=True, slots=True)
class StepResult:
    events: int = 0
    firings: int = 0
    actions: int = 0


class _Pending:
    """The buckets and firings of one step, before they are written."""

    def __init__(self, index: TriggerIndex, stored: Iterable[Bucket], now: datetime) -> None:
        self.index = index
        self.now = now
        self.buckets: dict[tuple[str, str], Bucket | None] = {
            (b.automation_id, b.key): b for b in stored
        }
        self.changed: set[tuple[str, str]] = set()
        self.firings: list[Firing] = []

    def get(self, aid: str, key: str) -> Bucket | None:
        return self.buckets.get((aid, key))

    def put(self, aid: str, key: str, bucket: Bucket | None) -> None:
        self.buckets[(aid, key)] = bucket
        self.changed.add((aid, key))

    def fire(self, aid: str, bucket: Bucket, reason: str, at: datetime) -> None:
        """Record a firing of ``aid`` (a part of a compound or sequence trigger
        advances its whole instead)."""
        whole, _, part = aid.partition("#")
        if part:
            self._part_fired(whole, int(part), bucket, at)
            return
        automation = self.index.composites.get(aid) or self.index.automations[aid]
        firing_id = new_sortable_id()  # actions run in firing order: the events' order
        context = {
            "automation": {"id": aid, "name": automation.name},
            "firing": {
                "id": firing_id,
                "reason": reason,
                "bucket": bucket.key,
                "event_ids": list(bucket.event_ids),
                "fired_at": self.now.isoformat(),
            },
        }
        actions = tuple(
            ActionRow(
                firing_id=firing_id,
                index=i,
                spec=json.dumps({"action": action.model_dump(mode="json"), "context": context}),
                next_attempt_at=self.now,
                automation_id=aid,
            )
            for i, action in enumerate(automation.actions)
        )
        self.firings.append(
            Firing(
                id=firing_id,
                automation_id=aid,
                fired_at=self.now,
                bucket_key=bucket.key,
                event_ids=bucket.event_ids,
                reason=reason,
                actions=actions,
            )
        )

    def _part_fired(self, aid: str, part: int, fired: Bucket, at: datetime) -> None:
        """Part ``part`` of a compound or sequence trigger fired at ``at``: its marker
        bucket ``#part`` remembers when and with which events; the whole fires when
        enough markers (compound) or every marker in order (sequence) fall within its
        window, and its markers are cleared."""
        whole = self.index.composites[aid]
        trigger = whole.trigger
        if not isinstance(trigger, CompoundTrigger | SequenceTrigger):
            raise TypeError(f"automation '{whole.name}' has no parts")
        within = trigger.within
        count = len(trigger.triggers)
        keys = [f"#{n}" for n in range(count)]
        if isinstance(trigger, SequenceTrigger) and part > 0:
            before = self.get(aid, keys[part - 1])
            if before is None:
                return  # out of order: the earlier part has not fired
        ends = at + within if within > timedelta(0) else None
        ids = fired.event_ids[:MAX_EVENT_IDS]
        self.put(aid, keys[part], Bucket(aid, keys[part], at, 1, ids, ends))
        markers = [m for m in (self.get(aid, k) for k in keys) if m is not None]
        if within > timedelta(0):
            markers = [m for m in markers if at - m.opened_at <= within]
        if isinstance(trigger, SequenceTrigger):
            done = part == count - 1 and len(markers) == count
            reason = f"its {count} triggers fired in order"
        else:
            done = len(markers) >= trigger.required()
            reason = f"{len(markers)} of its {count} triggers fired"
        if not done:
            return
        if within > timedelta(0):
            reason += f" within {_seconds(within)}"
        events = tuple(dict.fromkeys(i for m in markers for i in m.event_ids))[:MAX_EVENT_IDS]
        self.fire(aid, Bucket(aid, "", at, len(markers), events), reason, at)
        for key in keys:
            if self.get(aid, key) is not None:
                self.put(aid, key, None)

    def evaluation(self) -> Evaluation:
        upserts, deletes = [], []
        for key in sorted(self.changed):
            bucket = self.buckets[key]
            if bucket is None:
                deletes.append(key)
            else:
                upserts.append(bucket)
        return Evaluation(
            upserts=tuple(upserts), deletes=tuple(deletes), firings=tuple(self.firings)
        )


def _window_end(automation: Automation, opened: datetime) -> datetime | None:
    within = event_trigger(automation).within
    return opened + within if within > timedelta(0) else None


def _open(aid: str, automation: Automation, key: str, at: datetime, ids: tuple[str, ...]) -> Bucket:
    return Bucket(aid, key, at, 0, ids, _window_end(automation, at))


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


def expire(pending: _Pending, aid: str, bucket: Bucket, at: datetime) -> None:
    """The window of ``bucket`` ended (by ``at``): fire a starved Proactive bucket, then
    close it (one opened by the automation itself reopens at once)."""
    automation = pending.index.automations.get(aid)
    if automation is None:  # a compound's marker, or deleted or disabled: forget it
        pending.put(aid, bucket.key, None)
        return
    trigger = event_trigger(automation)
    if trigger.posture is Posture.PROACTIVE and bucket.count < trigger.threshold:
        pending.fire(
            aid,
            bucket,
            f"only {bucket.count} of {trigger.threshold} expected event(s) within "
            f"{_seconds(trigger.within)} after the window opened at {bucket.opened_at.isoformat()}",
            at,
        )
    reopen = trigger.posture is Posture.PROACTIVE and not trigger.after
    pending.put(aid, bucket.key, _open(aid, automation, bucket.key, at, ()) if reopen else None)


def apply_event(
    pending: _Pending, aid: str, automation: Automation, role: str, event: Event
) -> None:
    """Advance the bucket ``event`` falls into (``role``: it is expected, or opens a window)."""
    trigger = event_trigger(automation)
    key = bucket_key(trigger, event)
    at = as_utc(event.occurred)
    bucket = pending.get(aid, key)
    if bucket is not None and bucket.expires_at is not None and at > bucket.expires_at:
        expire(pending, aid, bucket, at)
        bucket = pending.get(aid, key)
    if role != EXPECT:  # an `after` event opens the window, unless one is open
        if bucket is None:
            pending.put(aid, key, _open(aid, automation, key, at, (event.id,)))
        return
    if bucket is None:
        if trigger.after:
            return  # not counted: no window is open
        bucket = _open(aid, automation, key, at, ())
    if event.id in bucket.event_ids:
        return  # the same event twice (a duplicate read): counted once
    ids = (
        bucket.event_ids
        if len(bucket.event_ids) >= MAX_EVENT_IDS
        else (*bucket.event_ids, event.id)
    )
    bucket = replace(bucket, count=bucket.count + 1, event_ids=ids)
    if bucket.count < trigger.threshold:
        pending.put(aid, key, bucket)
    elif trigger.posture is Posture.REACTIVE:
        window = f" within {_seconds(trigger.within)}" if trigger.within else ""
        pending.fire(aid, bucket, f"{bucket.count} matching event(s){window}", at)
        pending.put(aid, key, None)
    elif trigger.after:  # Proactive, satisfied: the window closes quietly
        pending.put(aid, key, None)
    else:  # Proactive without `after`: satisfied until its window ends, then reopens
        pending.put(aid, key, bucket)


class Evaluator:
    """Evaluates every enabled automation over the store's events (see module doc)."""

    def __init__(
        self,
        client: Client,
        *,
        name: str = EVALUATOR,
        batch: int = BATCH,
        log: Callable[[str], None] = _logger.info,
        metric_interval: float = metrics.INTERVAL,
    ) -> None:
        self.client = client
        self.metric_interval = metric_interval
        #: the enabled automations with a metric trigger (not in the event index)
        self.metric_automations: dict[str, Automation] = {}
        self._metrics_checked: float | None = None
        self.name = name
        self.batch = batch
        self.log = log
        self._parsed: dict[tuple[str, datetime], Automation | None] = {}
        self._index: TriggerIndex | None = None
        self._index_key: tuple[tuple[str, datetime, bool], ...] = ()
        self._version = ""  # of the automations the index was built from
        self._self_opened: set[str] = set()  # the index's self-opened Proactive triggers
        self.created: dict[str, datetime] = {}

    # -- the index ---------------------------------------------------------------

    def index(self) -> TriggerIndex:
        """The enabled automations, re-read from the store; rebuilt only on a change."""
        version = self.client.store.automations_version()
        if self._index is not None and version == self._version:
            return self._index
        stored = self.client.store.list_automations()
        key = tuple((a.id, a.updated, a.enabled) for a in stored)
        self._version = version
        if self._index is not None and key == self._index_key:
            return self._index
        enabled: dict[str, Automation] = {}
        measured: dict[str, Automation] = {}
        for row in stored:
            if not row.enabled:
                continue
            if (row.id, row.updated) not in self._parsed:
                try:
                    self._parsed[(row.id, row.updated)] = parse_automation(json.loads(row.spec))
                except LegatoError as exc:
                    self.log(f"error: automation '{row.name}' skipped: {exc}")
                    self._parsed[(row.id, row.updated)] = None
            parsed = self._parsed[(row.id, row.updated)]
            if parsed is not None and isinstance(parsed.trigger, MetricTrigger):
                measured[row.id] = parsed
            elif parsed is not None:
                enabled[row.id] = parsed
                self.created[row.id] = row.created
                if isinstance(parsed.trigger, CompoundTrigger | SequenceTrigger):
                    for n in range(len(parsed.trigger.triggers)):
                        self.created[f"{row.id}#{n}"] = row.created
        self._index, self._index_key = TriggerIndex(enabled), key
        self._self_opened = {a for a, x in self._index.automations.items() if _self_opened(x)}
        self.metric_automations = measured
        return self._index

    # -- one step ----------------------------------------------------------------

    def step(self) -> StepResult:
        """Evaluate one batch of events (and due windows), then run due actions."""
        events, firings = self.evaluate()
        firings += self.evaluate_metrics()
        actions = self.run_actions()
        flush_due_alerts(self.client.store)  # alert group windows that ended
        return StepResult(events=events, firings=firings, actions=actions)

    def run_until_caught_up(self) -> StepResult:
        """Steps until no event is left to read and no due action to run; the totals."""
        total = StepResult()
        while True:
            result = self.step()
            total = StepResult(
                total.events + result.events,
                total.firings + result.firings,
                total.actions + result.actions,
            )
            if result.events < self.batch and result.actions < ACTION_BATCH:
                return total

    def evaluate(self) -> tuple[int, int]:
        """Match one batch and commit it with the cursor; (events read, firings)."""
        store = self.client.store
        for _ in range(COMMIT_RETRIES):
            index = self.index()
            cursor = store.get_evaluator_cursor(self.name)
            batch = store.read_events(cursor, limit=self.batch)
            caught_up = len(batch.events) < self.batch
            pending = self._match(index, batch.events, caught_up)
            evaluation = pending.evaluation()
            moved = batch.cursor != cursor
            if not moved and not evaluation.upserts and not evaluation.deletes:
                return 0, 0
            if store.commit_evaluation(self.name, cursor, batch.cursor, evaluation):
                return len(batch.events), len(evaluation.firings)
            self.log("another evaluator moved the cursor; reading again")
        raise LegatoError(
            f"the automation evaluator '{self.name}' lost {COMMIT_RETRIES} commits in a row to "
            f"another evaluator; run one evaluator per store (the scheduler leader runs it)"
        )

    def evaluate_metrics(self, *, force: bool = False) -> int:
        """At most every ``metric_interval`` seconds (``force``: now), one step of the
        metric triggers (`legato.automations.metrics`), committed under the cursor
        ``<name>:metrics`` (the time of the last step) by compare-and-set; firings."""
        ticked = time.monotonic()
        if (
            not force
            and self._metrics_checked is not None
            and ticked - self._metrics_checked < self.metric_interval
        ):
            return 0
        self._metrics_checked = ticked
        self.index()
        automations = self.metric_automations
        if not automations:
            return 0
        store = self.client.store
        name = f"{self.name}:metrics"
        for _ in range(COMMIT_RETRIES):
            now = store.clock()
            cursor = store.get_evaluator_cursor(name)
            if cursor is not None and not force:
                since = (now - datetime.fromisoformat(cursor)).total_seconds()
                if since < self.metric_interval:
                    return 0  # another evaluator measured a moment ago
            stored = [b for aid in automations for b in store.list_buckets(aid, limit=1000)]
            evaluation = metrics.evaluate(store, automations, stored, now)
            if store.commit_evaluation(name, cursor, now.isoformat(), evaluation):
                return len(evaluation.firings)
            self.log("another evaluator measured the metric triggers; reading again")
        raise LegatoError(
            f"the automation evaluator '{self.name}' lost {COMMIT_RETRIES} metric commits in a "
            f"row to another evaluator; run one evaluator per store (the scheduler leader runs it)"
        )

    def _match(self, index: TriggerIndex, events: list[Event], caught_up: bool) -> _Pending:
        store = self.client.store
        hits: list[tuple[str, Automation, str, Event]] = []
        keys: set[tuple[str, str]] = set()
        expected: dict[tuple[str, str], bool] = {}  # (automation, event name): expected?
        for event in events:
            for automation, role in index.candidates(event):
                aid = index.ids[automation.name]
                if event.received is not None and event.received < self.created[aid]:
                    continue  # an automation sees the events after its creation
                if role == EXPECT:
                    known = expected.get((aid, event.event))
                    if known is None:
                        known = expected[(aid, event.event)] = _expected(automation, event)
                    if not known:
                        continue
                if trigger_problem(event_trigger(automation), event) is not None:
                    continue
                hits.append((aid, automation, role, event))
                keys.add((aid, bucket_key(event_trigger(automation), event)))
        self_opened = [(a, x) for a, x in index.automations.items() if a in self._self_opened]
        keys.update((aid, "") for aid, _ in self_opened)
        for aid, whole in index.composites.items():
            if isinstance(whole.trigger, CompoundTrigger | SequenceTrigger):
                keys.update((aid, f"#{n}") for n in range(len(whole.trigger.triggers)))
        now = store.clock()
        pending = _Pending(index, store.load_buckets(sorted(keys)), now)
        for aid, automation in self_opened:
            if pending.get(aid, "") is None:
                pending.put(aid, "", _open(aid, automation, "", self.created[aid], ()))
        for aid, automation, role, event in hits:
            apply_event(pending, aid, automation, role, event)
        if caught_up:  # windows end by the clock only once every earlier event was read
            self._expire_due(pending, now)
        return pending

    def _expire_due(self, pending: _Pending, now: datetime) -> None:
        stored = self.client.store.expired_buckets(now)
        due = {(b.automation_id, b.key): b for b in stored}
        for key, bucket in pending.buckets.items():  # this step's state wins
            if bucket is None or bucket.expires_at is None or bucket.expires_at > now:
                due.pop(key, None)
            else:
                due[key] = bucket
        for (aid, _), bucket in sorted(due.items(), key=lambda item: item[0]):
            expire(pending, aid, bucket, now)

    # -- actions -----------------------------------------------------------------

    def run_actions(self, limit: int = ACTION_BATCH) -> int:
        """Execute the pending action rows that are due; how many were attempted."""
        store = self.client.store
        rows = store.due_actions(store.clock(), limit=limit)
        for row in rows:
            self.run_action(row)
        return len(rows)

    def run_action(self, row: ActionRow) -> None:
        store = self.client.store
        data: dict[str, Any] = json.loads(row.spec)
        context = data["context"]
        event_ids = context["firing"]["event_ids"]
        event = store.get_event(event_ids[-1]) if event_ids else None
        attempts = row.attempts + 1
        try:
            action = parse_action(json.dumps(data["action"]))
            handler = ACTIONS[action.type]
            ctx = ActionContext(
                self.client, row.idempotency_key, event, context["automation"], context["firing"]
            )
            result = handler(ctx, action)
        except Exception as exc:  # recorded on the row and shown by `explain`
            error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            last = attempts >= MAX_ATTEMPTS
            self.log(
                f"automation action {row.idempotency_key} failed (attempt {attempts}"
                f"{', giving up' if last else ''}): {error}"
            )
            retry_at = store.clock() + timedelta(seconds=2**attempts)
            store.finish_action(
                row.firing_id,
                row.index,
                state="failed" if last else "pending",
                attempts=attempts,
                result=error,
                next_attempt_at=None if last else retry_at,
            )
            return
        store.finish_action(
            row.firing_id,
            row.index,
            state="done",
            attempts=attempts,
            result=result,
            next_attempt_at=None,
        )


def _expected(automation: Automation, event: Event) -> bool:
    expect = event_trigger(automation).expect
    return not expect or any(
        event.event.startswith(p[:-1]) if p.endswith("*") else event.event == p for p in expect
    )


def _self_opened(automation: Automation) -> bool:
    """A Proactive trigger without `after` or `for_each`: its one window opens itself."""
    trigger = event_trigger(automation)
    return trigger.posture is Posture.PROACTIVE and not trigger.after and not trigger.for_each
