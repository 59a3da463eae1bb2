"""Change notification: wake waiting processes when something they wait for happens.

A process that waits for work (a worker waiting for queued runs, a paused run's
resumer) listens on named channels instead of polling the tables. PostgreSQL
delivers notifications with LISTEN/NOTIFY the moment the notifying transaction
commits; SQLite, which has no such thing, keeps a version counter per channel
that listeners poll every ``LEGATO_POLL_SECONDS`` (default 0.1 s), which costs
one tiny read per interval. A notification is only a hint to look again: the
waiter always re-reads the store, so a coalesced or missed wake-up delays work
but never loses it.
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING

from legato.errors import ConfigurationError, StoreError

if TYPE_CHECKING:
    from legato.records import Notification

#: notified (payload: the run's work queue) whenever a run is queued for workers
RUNS_QUEUED = "legato_runs_queued"
#: notified when slots of global limits are given back
LIMIT_SLOTS_FREED = "legato_limit_slots_freed"
#: notified (no payload) by `Store.emit_events` when it stored a new event, in its
#: transaction: the leader evaluates automations at once instead of at its next tick
EVENTS_STORED = "legato_events_stored"

DEFAULT_POLL_SECONDS = 0.1
# PostgreSQL's identifier limit is 63 bytes and NOTIFY payloads must stay
# under 8000 bytes; the same limits hold on SQLite so code moves freely.
_CHANNEL = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MAX_PAYLOAD_BYTES = 7999


def check_channel(channel: str) -> str:
    """The channel name, or ConfigurationError saying what a valid one looks like."""
    if not isinstance(channel, str) or _CHANNEL.fullmatch(channel) is None:
        raise ConfigurationError(
            f"invalid notification channel {channel!r}: use 1 to 63 lowercase letters, "
            f"digits and underscores, starting with a letter or underscore"
        )
    return channel


def check_payload(payload: str) -> str:
    if len(payload.encode("utf-8", "surrogatepass")) > MAX_PAYLOAD_BYTES:
        raise ConfigurationError(
            f"notification payload of {len(payload)} characters is too long: keep it under "
            f"{MAX_PAYLOAD_BYTES} bytes and store larger data in a run or result instead"
        )
    return payload


def check_channels(channels: Sequence[str]) -> tuple[str, ...]:
    if isinstance(channels, str):
        channels = (channels,)
    checked = tuple(dict.fromkeys(check_channel(channel) for channel in channels))
    if not checked:
        raise ConfigurationError("listen() needs at least one channel name")
    return checked


class ChangeListener(ABC):
    """Notifications on a set of channels, from `Store.listen`. Close it when done
    (or use it as a context manager); one listener belongs to one thread."""

    channels: tuple[str, ...]

    @abstractmethod
    def wait(self, timeout: float) -> list[Notification]:
        """Block until at least one notification arrives or ``timeout`` seconds pass.

        Returns the notifications received since the last call (empty on
        timeout), oldest first. Notifications sent before the listener was
        created are not seen. SQLite coalesces several notifications on one
        channel between two polls into the last one.
        """

    @abstractmethod
    def close(self) -> None:
        """Stop listening and release the connection."""

    def __enter__(self) -> ChangeListener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SharedListener:
    """One listener on one channel that wakes every waiter of a process.

    Waiting on a channel with a `ChangeListener` each costs a connection on
    PostgreSQL (and a poller on SQLite); a process where hundreds of threads
    or coroutines wait for the same news shares one instead. A thread of its
    own holds the listener while anyone waits (and ``linger`` seconds more),
    and counts what happens in two numbers, read together by `snapshot`:

    - ``news`` grows on every notification, and every ``tick`` seconds even
      without one (what waiters wait for may also change silently, e.g. a
      slot expiring), and once more each time the listener starts listening
      (whatever was sent before then);
    - ``changes`` grows with ``news`` and with `nudge`, which waiters use to
      pass a turn among themselves.

    `wait` / `wait_async` block until ``changes`` moves past a mark taken
    earlier, so no wake-up between taking the mark and waiting is lost. A
    store outage in the listener is reported once on stderr and retried; the
    ticks go on meanwhile, and a waiter that hears nothing for four ticks
    wakes everyone itself, so nobody sleeps forever on a broken listener.
    Async waiters are woken through their loop (``call_soon_threadsafe``), so
    waiting never blocks an event loop.
    """

    def __init__(
        self,
        open_listener: Callable[[], ChangeListener | None],
        channel: str,
        where: str,
        *,
        tick: float,
        linger: float = 2.0,
    ) -> None:
        self._open_listener = open_listener  # None: the store is gone, stop
        self.channel = channel
        self.where = where
        self.tick = tick
        self.linger = linger
        self._cond = threading.Condition(threading.Lock())
        self._news = 0
        self._changes = 0
        self._waiters = 0
        self._idle_since = time.monotonic()
        self._thread: threading.Thread | None = None
        self._listening = False
        self._loops: dict[asyncio.Event, asyncio.AbstractEventLoop] = {}

    # -- waiters -----------------------------------------------------------------

    @property
    def waiters(self) -> int:
        return self._waiters

    @property
    def listening(self) -> bool:
        """Whether the listener thread currently holds a listener."""
        return self._listening

    def snapshot(self) -> tuple[int, int]:
        """(changes, news): a mark for `wait`, and the news count it was taken at."""
        with self._cond:
            return self._changes, self._news

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Count the caller as a waiter (starting the listener thread) for the block."""
        with self._cond:
            self._waiters += 1
            self._ensure_thread()
        try:
            yield
        finally:
            with self._cond:
                self._waiters -= 1
                if self._waiters == 0:
                    self._idle_since = time.monotonic()
                    # Nobody follows the news until the next waiter: let whatever
                    # the waiters concluded from it (a slot taken, say) go stale.
                    self._bump(news=True)

    def wait(self, mark: int, timeout: float) -> bool:
        """Block until ``changes`` differs from ``mark``; False after ``timeout`` seconds
        of silence (then everyone is woken: the listener may be stuck)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._changes == mark:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._silence()
                    return False
                self._cond.wait(remaining)
            return True

    async def wait_async(self, mark: int, timeout: float) -> bool:
        """`wait` for a coroutine: yields to its event loop while waiting."""
        event = asyncio.Event()
        loop = asyncio.get_running_loop()
        with self._cond:
            if self._changes != mark:
                return True
            self._loops[event] = loop
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            with self._cond:
                if self._changes != mark:
                    return True
                self._silence()
            return False
        finally:
            with self._cond:
                self._loops.pop(event, None)

    def wake(self) -> None:
        """News for everyone: each waiter looks again."""
        with self._cond:
            self._bump(news=True)

    def nudge(self) -> None:
        """Wake every waiter without news (a waiter's turn ended)."""
        with self._cond:
            self._bump(news=False)

    def _bump(self, *, news: bool) -> None:  # with self._cond held
        if news:
            self._news += 1
        self._changes += 1
        self._cond.notify_all()
        for event, loop in self._loops.items():
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # its loop was closed: that waiter is gone
                continue

    def _silence(self) -> None:  # with self._cond held
        self._bump(news=True)
        self._ensure_thread()

    # -- the listener thread -------------------------------------------------------

    def _ensure_thread(self) -> None:  # with self._cond held
        if self._thread is None and self._waiters > 0:
            self._thread = threading.Thread(
                target=self._listen, name=f"legato-listen-{self.channel}", daemon=True
            )
            self._thread.start()

    def _listen(self) -> None:
        me = threading.current_thread()
        listener: ChangeListener | None = None
        failed = False  # an outage was reported and has not ended yet
        try:
            while self._keep_going(me):
                try:
                    if listener is None:
                        listener = self._open_listener()
                        if listener is None:
                            return  # the store is gone
                        if failed:
                            failed = False
                            sys.stderr.write(
                                f"legato: listening on {self.channel} at {self.where} again\n"
                            )
                        self.wake()  # whatever was sent before we listened
                        self._listening = True
                    listener.wait(self.tick)
                    self.wake()
                except StoreError as exc:
                    self._listening = False
                    _close(listener, self.channel, self.where)
                    listener = None
                    if self._waiters == 0:
                        return  # nobody to tell (the store was closed, say)
                    if not failed:
                        failed = True
                        sys.stderr.write(
                            f"legato: listening on {self.channel} at {self.where} failed: "
                            f"{exc}; waiters look again every {self.tick:g}s meanwhile, and "
                            f"the listener keeps reconnecting\n"
                        )
                    self.wake()
                    time.sleep(self.tick)
        finally:
            _close(listener, self.channel, self.where)
            with self._cond:
                if self._thread is me:
                    self._thread = None
                    self._listening = False

    def _keep_going(self, me: threading.Thread) -> bool:
        with self._cond:
            if self._waiters > 0 or time.monotonic() - self._idle_since < self.linger:
                return True
            # Leave: a waiter coming from now on starts a new thread.
            if self._thread is me:
                self._thread = None
                self._listening = False
            return False


def _close(listener: ChangeListener | None, channel: str, where: str) -> None:
    """Close ``listener`` (if any); a failure to is reported, not raised."""
    if listener is not None:
        try:
            listener.close()
        except StoreError as exc:
            sys.stderr.write(f"legato: closing the listener on {channel} at {where}: {exc}\n")
