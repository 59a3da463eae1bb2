"""Virtual time for tests: ``with legato.testing.virtual_clock() as clock:``.

Inside the block the engine reads a clock the test moves: `legato.sleep`, task
and flow retry delays, pause timeouts, schedules, deadlines, leases and
heartbeats, and every time the engine writes into the store (start and end
times, due times). ``clock.advance(hours=2)`` moves it and wakes every wait now
due. With ``auto=True`` (the default) the clock also skips ahead by itself: when
a flow or task waits on it (a sleep, a retry delay) and nothing else touched the
clock for a moment (``quiet`` real seconds), it jumps to the earliest such wait's
wake-up time. So a flow that sleeps a day and retries a task three times ten
minutes apart runs in milliseconds. ``auto=False`` moves only on ``advance``.

Limits: code that reads ``time.time()`` or ``datetime.now()`` itself (user code,
other libraries) sees real time; a PostgreSQL store judges times it computes in
SQL with the server's ``now()``, which stays real; a task doing real work for
longer than ``quiet`` while another waits lets ``auto`` skip ahead meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from legato import _clock
from legato._clock import VirtualClock
from legato.errors import ConfigurationError


class Clock:
    """The handle ``virtual_clock()`` gives a test."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def now(self) -> datetime:
        """The virtual time, an aware UTC datetime."""
        return self._clock.now()

    def advance(
        self,
        delta: timedelta | None = None,
        *,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
    ) -> datetime:
        """Move the clock forward and wake every wait now due; returns the new time."""
        step = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if delta is not None:
            step += delta
        self._clock.advance(step.total_seconds())
        return self._clock.now()


def _auto_advance(clock: VirtualClock, stop: threading.Event, quiet: float) -> None:
    """Skip to the earliest flow or task wait once nothing moved for ``quiet`` seconds."""
    while not stop.is_set():
        mark = clock.generation()
        if stop.wait(quiet):
            return
        if clock.generation() != mark:
            continue
        due = clock.next_due()
        if due is not None:
            clock.advance(due)


@contextmanager
def virtual_clock(
    start: datetime | None = None, *, auto: bool = True, quiet: float = 0.02
) -> Iterator[Clock]:
    """Run the block on a virtual clock starting at ``start`` (default: the real now).
    Leaving the block restores real time; waits still on the virtual clock return."""
    if quiet <= 0:
        raise ConfigurationError(f"virtual_clock(quiet={quiet!r}) must be > 0 real seconds")
    clock = VirtualClock(start, auto=auto)
    previous = _clock.install(clock)
    stop = threading.Event()
    skipper = None
    if auto:
        skipper = threading.Thread(
            target=_auto_advance,
            args=(clock, stop, quiet),
            name="legato-virtual-clock",
            daemon=True,
        )
        skipper.start()
    try:
        yield Clock(clock)
    finally:
        stop.set()
        if skipper is not None:
            skipper.join()
        _clock.install(previous)
        clock.close()
