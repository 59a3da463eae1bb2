"""Schedules: checking them and the slots they produce."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from legato.errors import ScheduleError
from legato.records import Schedule
from legato.schedules import describe, make_schedule, next_slots, slots_between

T0 = datetime(2024, 3, 29, 12, 0, 30, tzinfo=UTC)


def test_cron_slots_follow_local_time_across_a_dst_change() -> None:
    daily = Schedule(cron="0 2 * * *", timezone="Europe/Paris")
    got = next_slots(daily, T0, 4)
    # 02:00 Paris is 01:00 UTC before the change (31 March 2024) and 00:00 UTC after;
    # on the day itself 02:00 does not exist and croniter moves it to 03:00 local.
    assert got[0] == datetime(2024, 3, 30, 1, 0, tzinfo=UTC)
    assert got[2] == datetime(2024, 4, 1, 0, 0, tzinfo=UTC)
    assert all(slot.tzinfo is not None for slot in got)


def test_cron_in_utc_every_fifteen_minutes() -> None:
    got = slots_between(Schedule(cron="*/15 * * * *"), T0, T0 + timedelta(hours=1))
    assert [slot.strftime("%H:%M") for slot in got] == ["12:15", "12:30", "12:45", "13:00"]


def test_interval_slots_count_from_the_anchor_and_exclude_the_start() -> None:
    schedule = Schedule(interval=90, anchor=datetime(2024, 3, 29, 11, 0, tzinfo=UTC))
    got = next_slots(schedule, datetime(2024, 3, 29, 11, 3, tzinfo=UTC), 3)
    assert [slot.strftime("%H:%M:%S") for slot in got] == ["11:04:30", "11:06:00", "11:07:30"]
    # A slot exactly at "after" is not after it.
    exact = next_slots(
        schedule, datetime(2024, 3, 29, 11, 3, 0, tzinfo=UTC) + timedelta(seconds=90), 1
    )
    assert exact == [datetime(2024, 3, 29, 11, 6, tzinfo=UTC)]
    before_anchor = next_slots(schedule, datetime(2024, 3, 29, 10, 0, tzinfo=UTC), 1)
    assert before_anchor == [datetime(2024, 3, 29, 11, 0, tzinfo=UTC)]


def test_every_process_computes_the_same_slots() -> None:
    schedule = Schedule(interval=7, anchor=T0)
    first = slots_between(schedule, T0, T0 + timedelta(minutes=5))
    shifted = slots_between(schedule, T0 + timedelta(seconds=3), T0 + timedelta(minutes=5))
    assert set(shifted) <= set(first) and len(first) - len(shifted) == 0


def test_rrule_slots() -> None:
    weekly = make_schedule(
        rrule="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
        timezone="America/New_York",
        now=T0,
    )
    got = next_slots(weekly, T0, 2)
    assert got == [
        datetime(2024, 4, 1, 13, 0, tzinfo=UTC),  # 09:00 EDT
        datetime(2024, 4, 8, 13, 0, tzinfo=UTC),
    ]


def test_make_schedule_anchors_intervals_on_the_minute() -> None:
    schedule = make_schedule(interval=60, now=T0)
    assert schedule.anchor == datetime(2024, 3, 29, 12, 0, tzinfo=UTC)
    assert make_schedule(cron="0 * * * *", now=T0).anchor is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of --cron, --interval or --rrule"),
        ({"cron": "0 * * * *", "interval": 60}, "got --cron, --interval"),
        ({"cron": "61 * * * *"}, "invalid cron expression"),
        ({"cron": "every day"}, "five fields"),
        ({"interval": 0}, "from 1 to 315,360,000"),
        ({"interval": float("nan")}, "from 1 to 315,360,000"),
        # Past 10 years: once stored, it overflowed every listing and the scheduler.
        ({"interval": 1e20}, "from 1 to 315,360,000"),
        ({"interval": 1e308}, "from 1 to 315,360,000"),
        ({"interval": True}, "invalid interval True"),
        ({"interval": "60"}, "invalid interval '60'"),
        # Reads as cron, but February 31st never comes.
        ({"cron": "0 0 31 2 *"}, "cannot compute its next due time"),
        ({"cron": 5}, "invalid cron expression 5"),
        ({"rrule": 7}, "give the rule as text"),
        ({"rrule": "FREQ=SOMETIMES"}, "invalid RRULE"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_bad_schedules_are_clear_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        make_schedule(now=T0, **kwargs)  # type: ignore[arg-type]


def test_a_stored_schedule_that_cannot_compute_raises_schedule_error() -> None:
    # Written by an older version, before the bounds: no raw OverflowError escapes.
    stored = Schedule(interval=1e20, anchor=T0)
    with pytest.raises(ScheduleError, match="cannot compute its next due time"):
        next_slots(stored, T0, 1)
    with pytest.raises(ScheduleError, match="cannot compute its next due time"):
        slots_between(Schedule(cron="0 0 30 2 *"), T0, T0 + timedelta(days=400))
    assert describe(stored) == "every 1e+20s"


def test_slots_between_stops_at_its_limit() -> None:
    every_minute = Schedule(cron="* * * * *")
    ten_years = T0 + timedelta(days=3650)
    found = slots_between(every_minute, T0, ten_years, limit=3)
    assert found == [T0.replace(second=0, microsecond=0) + timedelta(minutes=i) for i in (1, 2, 3)]
    assert slots_between(every_minute, T0, ten_years, limit=0) == []


def test_describe() -> None:
    assert describe(Schedule(cron="0 2 * * *", timezone="Europe/Paris")) == (
        "cron 0 2 * * * (Europe/Paris)"
    )
    assert describe(Schedule(interval=90)) == "every 90s"


def test_schedule_dict_round_trip() -> None:
    schedule = make_schedule(interval=30.5, timezone="Asia/Tokyo", now=T0)
    assert Schedule.from_dict(schedule.to_dict()) == schedule


OLD_RULES = [
    "DTSTART:20261120T000013Z\nRRULE:FREQ=MINUTELY;INTERVAL=7;BYSECOND=5,50",
    "DTSTART;TZID=Europe/Paris:20240301T023000\nRRULE:FREQ=DAILY;INTERVAL=3",
    "DTSTART;TZID=America/New_York:20230101T013000\nRRULE:FREQ=HOURLY;INTERVAL=5;BYMINUTE=30",
    "DTSTART;TZID=Europe/Paris:20200105T090000\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=SU,TU\n"
    "EXRULE:FREQ=WEEKLY;INTERVAL=4;BYDAY=TU",
]


@pytest.mark.parametrize("text", OLD_RULES)
def test_rrule_slots_of_a_rule_started_long_ago_are_its_own(text: str) -> None:
    from dateutil.rrule import rrulestr

    after = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    plain = rrulestr(text, forceset=True)
    expected, current = [], after
    for _ in range(20):
        current = plain.after(current, inc=False)
        expected.append(current.astimezone(UTC))
    assert next_slots(Schedule(rrule=text), after, 20) == expected


def test_a_secondly_rrule_from_years_ago_is_read_from_near_now() -> None:
    # Walking every second since 2000 from the rule's start would take many minutes.
    start = datetime(2000, 1, 1, 0, 0, 13, tzinfo=UTC)
    schedule = Schedule(rrule="DTSTART:20000101T000013Z\nRRULE:FREQ=SECONDLY;INTERVAL=7")
    after = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    found = next_slots(schedule, after, 3)
    assert all((t - start).total_seconds() % 7 == 0 for t in found)
    assert found[0] > after and (found[0] - after).total_seconds() <= 7
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(found)] == [7, 7]
