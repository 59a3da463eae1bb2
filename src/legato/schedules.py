"""Schedules: checking them, and the slots (due times) they produce.

A schedule is a cron expression, a fixed interval, or an iCalendar RRULE,
read in an IANA time zone so that "02:00 every day" stays 02:00 local time
across daylight-saving changes. Slots are computed the same way in every
process, so the scheduler (whichever worker leads) and `legato deployment
show` agree, and a slot's run is keyed by its time.

croniter and dateutil are imported here only, when schedules are used.

Every schedule is checked before anything stores it (`check_schedule`): an
interval between 1 second and 10 years, a cron expression croniter reads, an
RRULE dateutil reads, a known time zone, and a next due time that can be
computed. A stored schedule that fails anyway (written by an older version)
raises `ScheduleError` from `slots`, never a raw ``OverflowError``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from legato.errors import ScheduleError
from legato.records import Schedule, utcnow

# Bounds of an interval schedule, in seconds: 1 s to 10 years (365-day years).
MIN_INTERVAL_SECONDS = 1
MAX_INTERVAL_SECONDS = 10 * 365 * 86400


def make_schedule(
    *,
    cron: str | None = None,
    interval: float | None = None,
    rrule: str | None = None,
    timezone: str = "UTC",
    anchor: datetime | None = None,
    now: datetime | None = None,
) -> Schedule:
    """A checked schedule. An interval or RRULE without an anchor starts at
    ``now`` rounded down to the minute, so its slots fall on whole minutes."""
    options = (("--cron", cron), ("--interval", interval), ("--rrule", rrule))
    given = [name for name, value in options if value is not None]
    if len(given) != 1:
        raise ScheduleError(
            "a schedule needs exactly one of --cron, --interval or --rrule"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if anchor is None and cron is None:
        start = (now or utcnow()).astimezone(UTC)
        anchor = start.replace(second=0, microsecond=0)
    schedule = Schedule(cron=cron, interval=interval, rrule=rrule, timezone=timezone, anchor=anchor)
    check_schedule(schedule)
    return schedule


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from None


def check_schedule(schedule: Schedule) -> None:
    """Raise ScheduleError saying what is wrong with ``schedule``, if anything.

    Beyond reading each part, the schedule's next due time is computed once, so
    a schedule that would fail later (in the scheduler, in a listing) fails here.
    """
    if not isinstance(schedule.timezone, str):
        raise ScheduleError(
            f"invalid time zone {schedule.timezone!r}; use an IANA name such as 'UTC'"
        )
    zone = _zone(schedule.timezone)
    if schedule.anchor is not None and not isinstance(schedule.anchor, datetime):
        raise ScheduleError(f"invalid schedule anchor {schedule.anchor!r}: give a datetime")
    if schedule.cron is not None:
        from croniter import croniter

        if not isinstance(schedule.cron, str) or not croniter.is_valid(schedule.cron):
            raise ScheduleError(
                f"invalid cron expression {schedule.cron!r}; write five fields "
                f"'minute hour day-of-month month day-of-week', e.g. '0 2 * * *'"
            )
    elif schedule.interval is not None:
        seconds = schedule.interval
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or not MIN_INTERVAL_SECONDS <= seconds <= MAX_INTERVAL_SECONDS
        ):
            raise ScheduleError(
                f"invalid interval {seconds!r}: give a number of seconds from "
                f"{MIN_INTERVAL_SECONDS} to {MAX_INTERVAL_SECONDS:,} (10 years)"
            )
    elif schedule.rrule is not None:
        if not isinstance(schedule.rrule, str):
            raise ScheduleError(f"invalid RRULE {schedule.rrule!r}: give the rule as text")
        _rrule(schedule, zone, schedule.anchor or utcnow())
    else:
        raise ScheduleError("a schedule needs one of cron, interval or rrule")
    next(slots(schedule, utcnow()), None)


def _rrule(schedule: Schedule, zone: ZoneInfo, anchor: datetime) -> Any:
    from dateutil.rrule import rrulestr

    text = schedule.rrule or ""
    try:
        if "DTSTART" in text.upper():
            return rrulestr(text, forceset=True)
        return rrulestr(text, dtstart=anchor.astimezone(zone), forceset=True)
    except (ValueError, TypeError) as exc:
        raise ScheduleError(
            f"invalid RRULE {text!r} ({exc}); write it like 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9'"
        ) from None


def slots(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """The schedule's due times strictly after ``after``, in order, as UTC datetimes.

    Lazy: take as many as needed and stop. A schedule whose times cannot be
    computed (a cron day that never comes, an interval past the calendar's end)
    raises ScheduleError naming it.
    """
    try:
        yield from _slots(schedule, after)
    except (ValueError, OverflowError, ArithmeticError) as exc:
        raise ScheduleError(
            f"schedule '{describe(schedule)}' cannot compute its next due time after "
            f"{after.isoformat()} ({type(exc).__name__}: {exc}); change the schedule"
        ) from None


def _slots(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    zone = _zone(schedule.timezone)
    after = after.astimezone(UTC)
    if schedule.cron is not None:
        from croniter import croniter

        cron = croniter(schedule.cron, after.astimezone(zone))
        while True:
            yield cron.get_next(datetime).astimezone(UTC)
    elif schedule.interval is not None:
        step = timedelta(seconds=schedule.interval)
        anchor = (schedule.anchor or after).astimezone(UTC)
        if after < anchor:
            current = anchor
        else:
            current = anchor + step * (math.floor((after - anchor) / step) + 1)
        while True:
            yield current
            current += step
    else:
        anchor = schedule.anchor or after
        rule = _fast_forward(_rrule(schedule, zone, anchor), after.astimezone(zone))
        # One walk from the rule's start, not one per slot.
        for found in rule.xafter(after.astimezone(zone), inc=False):
            yield found.astimezone(UTC)


# Periods of the frequencies whose start can be moved forward in whole periods
# without changing any occurrence (dateutil numbers them SECONDLY=6 ... WEEKLY=2).
_PERIODS = {6: timedelta(seconds=1), 5: timedelta(minutes=1), 4: timedelta(hours=1)}
_WALL_PERIODS = {3: timedelta(days=1), 2: timedelta(weeks=1)}


def _fast_forward(ruleset: Any, after: datetime) -> Any:
    """The rule set with each rule started close before ``after``: dateutil walks every
    period from a rule's start, so a minutely rule that started years ago would
    take minutes to find its next time. Rules with a COUNT keep their start (their
    count runs from it), and so does anything that is not a plain rule set."""
    rules = getattr(ruleset, "_rrule", None)
    if not isinstance(rules, list):
        return ruleset
    ruleset._rrule = [_forward(rule, after) for rule in rules]
    ruleset._exrule = [_forward(rule, after) for rule in getattr(ruleset, "_exrule", [])]
    return ruleset


def _forward(rule: Any, after: datetime) -> Any:
    freq, interval, count, start = rule._freq, rule._interval, rule._count, rule._dtstart
    period = _PERIODS.get(freq) or _WALL_PERIODS.get(freq)
    if period is None or count is not None or start is None or start.tzinfo is None:
        return rule
    step = period * interval
    whole = math.floor((after - start) / step) - 1  # keep one period of margin
    if whole <= 1:
        return rule
    if freq in _WALL_PERIODS:  # days and weeks move on the wall clock, as the rule does
        moved = (start.replace(tzinfo=None) + step * whole).replace(tzinfo=start.tzinfo)
    else:
        moved = start + step * whole
    return rule.replace(dtstart=moved)


def slots_between(
    schedule: Schedule, after: datetime, until: datetime, *, limit: int | None = None
) -> list[datetime]:
    """Due times in (``after``, ``until``], oldest first; at most ``limit`` of them
    (the first ones), read lazily, so a cap costs its size whatever the range."""
    found: list[datetime] = []
    if limit is not None and limit <= 0:
        return found
    for slot in slots(schedule, after):
        if slot > until:
            break
        found.append(slot)
        if limit is not None and len(found) >= limit:
            break
    return found


def next_slots(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` due times after ``after``."""
    found: list[datetime] = []
    for slot in slots(schedule, after):
        if len(found) >= count:
            break
        found.append(slot)
    return found


def describe(schedule: Schedule) -> str:
    """A short human reading: 'cron 0 2 * * * (Europe/Paris)', 'every 90s', ...

    Never raises, whatever a stored schedule holds."""
    if schedule.cron is not None:
        text = f"cron {schedule.cron}"
    elif schedule.interval is not None:
        interval = schedule.interval
        shown = f"{interval:g}" if isinstance(interval, int | float) else repr(interval)
        text = f"every {shown}s"
    else:
        text = f"rrule {schedule.rrule}"
    return text if schedule.timezone == "UTC" else f"{text} ({schedule.timezone})"
