"""The one clock the engine reads.

Every time the engine records or waits on goes through this module: `now` (an
aware UTC datetime: start and end times, due times, heartbeats), `time` (the
same instant as epoch seconds), `monotonic` (intervals), `sleep` and `wait`
(an event with a timeout). By default they are the real clock, at the cost of
one global read. `legato.testing.virtual_clock()` installs a `VirtualClock`
instead, whose time only moves when a test advances it (or, with ``auto``,
when every thread waiting on it has waited a moment and nobody else touched it).

Only waits whose *length* means something are virtual: `legato.sleep`, retry
delays, and the monitor's heartbeat interval. Waits that poll for something to
happen (a future, a limit slot, a lock) and task timeouts stay real.
"""

from __future__ import annotations

import threading
import time as _time
from datetime import UTC, datetime, timedelta

from legato.errors import ConfigurationError

#: polling slice (real seconds) of a virtual wait on an event nobody notifies us of
_EVENT_SLICE = 0.01


class VirtualClock:
    """A clock that moves only when told to (see `legato.testing.virtual_clock`)."""

    def __init__(self, start: datetime | None = None, *, auto: bool = True) -> None:
        if start is None:
            start = datetime.now(UTC)
        elif start.tzinfo is None:
            raise ConfigurationError(
                f"virtual_clock(start={start!r}) needs an aware datetime: "
                "give tzinfo, e.g. datetime(2030, 1, 1, tzinfo=UTC)"
            )
        self._start = start.astimezone(UTC)
        self._mono0 = _time.monotonic()
        self._elapsed = 0.0
        self._cond = threading.Condition()
        self._waiters: dict[int, tuple[float, bool]] = {}  # id -> (deadline, foreground)
        self._next_id = 0
        self._generation = 0  # changes whenever a wait starts or ends or time moves
        self._closed = False
        self.auto = auto

    # --- reading -------------------------------------------------------------

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def time(self) -> float:
        return self._start.timestamp() + self._elapsed

    def monotonic(self) -> float:
        return self._mono0 + self._elapsed

    # --- moving --------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward and wake every wait now due."""
        if not seconds >= 0:
            raise ConfigurationError(
                f"advance({seconds!r}): the clock only moves forward (seconds >= 0)"
            )
        with self._cond:
            self._elapsed += seconds
            self._generation += 1
            self._cond.notify_all()

    def next_due(self) -> float | None:
        """Seconds until the earliest wait of a flow or task (not a background loop)
        is due, or None when none waits."""
        with self._cond:
            due = [deadline for deadline, foreground in self._waiters.values() if foreground]
            return None if not due else max(0.0, min(due) - self._elapsed)

    def close(self) -> None:
        """Stop being the clock: every wait still on it returns now."""
        with self._cond:
            self._closed = True
            self._generation += 1
            self._cond.notify_all()

    # --- waiting -------------------------------------------------------------

    def wait(
        self, event: threading.Event | None, timeout: float, *, foreground: bool = True
    ) -> bool:
        """Wait until ``event`` is set (True) or ``timeout`` virtual seconds pass (False;
        a plain sleep returns True). A background wait never makes ``auto`` skip ahead."""
        with self._cond:
            deadline = self._elapsed + timeout
            key = self._next_id
            self._next_id += 1
            self._waiters[key] = (deadline, foreground)
            self._generation += 1
        try:
            while True:
                if event is not None and event.is_set():
                    return True
                with self._cond:
                    if self._elapsed >= deadline or self._closed:
                        return event is None
                    self._cond.wait(_EVENT_SLICE if event is not None else None)
        finally:
            with self._cond:
                del self._waiters[key]
                self._generation += 1

    async def wait_async(self, timeout: float) -> None:
        """`wait` for a coroutine: ``timeout`` virtual seconds, polling the clock."""
        import asyncio

        with self._cond:
            deadline = self._elapsed + timeout
            key = self._next_id
            self._next_id += 1
            self._waiters[key] = (deadline, True)
            self._generation += 1
        try:
            while self._elapsed < deadline and not self._closed:
                await asyncio.sleep(_EVENT_SLICE)
        finally:
            with self._cond:
                del self._waiters[key]
                self._generation += 1

    def generation(self) -> int:
        with self._cond:
            return self._generation


#: the installed virtual clock, or None for the real one
_virtual: VirtualClock | None = None


def install(clock: VirtualClock | None) -> VirtualClock | None:
    """Make ``clock`` the engine's clock (None: the real one); returns the previous one."""
    global _virtual
    previous, _virtual = _virtual, clock
    return previous


def current() -> VirtualClock | None:
    return _virtual


def now() -> datetime:
    """The current time, an aware UTC datetime."""
    clock = _virtual
    return datetime.now(UTC) if clock is None else clock.now()


def time() -> float:
    """The current time in seconds since the epoch."""
    clock = _virtual
    return _time.time() if clock is None else clock.time()


def monotonic() -> float:
    """Seconds on a clock that never goes back (for intervals)."""
    clock = _virtual
    return _time.monotonic() if clock is None else clock.monotonic()


def sleep(seconds: float) -> None:
    """Sleep ``seconds`` (virtual seconds under a virtual clock)."""
    clock = _virtual
    if clock is None:
        _time.sleep(seconds)
    elif seconds > 0:
        clock.wait(None, seconds)


def wait(event: threading.Event, timeout: float | None, *, foreground: bool = False) -> bool:
    """``event.wait(timeout)`` with ``timeout`` read on this clock. ``foreground``: a
    flow or task is what waits, so ``auto`` may skip ahead to it."""
    clock = _virtual
    if clock is None or timeout is None:
        return event.wait(timeout)
    return clock.wait(event, timeout, foreground=foreground)


async def sleep_async(seconds: float) -> None:
    """`sleep` for coroutines: awaits instead of blocking the event loop."""
    import asyncio

    clock = _virtual
    if clock is None:
        await asyncio.sleep(seconds)
    elif seconds > 0:
        await clock.wait_async(seconds)


def poll_slice(left: float, most: float) -> float:
    """How long a wait that wakes every ``most`` seconds to look around waits now:
    ``min(left, most)`` on the real clock; all of ``left`` on a virtual one, whose
    time moves in jumps (waking to look around would make each jump a crawl)."""
    return min(left, most) if _virtual is None else left
