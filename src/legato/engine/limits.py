"""Global limits for tasks: a task whose tags name limits holds a slot of each while it runs.

Which tags are limits is read from the store at most every few seconds per
process (a limit set just now applies within ``_REFRESH_SECONDS``), so a task
whose tags name no limit costs a dictionary lookup, and an untagged task
nothing at all. Slots are taken in name order (two tasks needing the same two
limits cannot deadlock), held under the run's lease (the run's monitor renews
them each heartbeat; a crashed process's slots free themselves when the lease
lapses), and given back when the task ends, however it ends.

Waiting costs no connection per task: every task of a process waiting for
slots of a store shares that process's one `LimitWaiters` — one listener on
``legato_limit_slots_freed`` (one LISTEN connection on PostgreSQL, one
poller on SQLite) that wakes them all when slots are given back anywhere, and
every ``_RECHECK_SECONDS`` anyway (slots also free by expiring, and rate
windows pass silently). Woken waiters of one limit take turns: one at a time
tries the store, and after a failed try the others wait for the next news
instead of trying too, so a process asks the store about a limit about once
per news, however many of its tasks wait. A waiting task also looks at its
run at each wake-up and stops waiting if the run is cancelled.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from legato.engine.ids import new_id
from legato.engine.liveness import lease_seconds
from legato.records import utcnow
from legato.store.notifications import LIMIT_SLOTS_FREED, ChangeListener, SharedListener

if TYPE_CHECKING:
    from legato.engine.context import FlowRunContext
    from legato.engine.task_engine import TaskCall
    from legato.store.base import Store

_REFRESH_SECONDS = 5.0
#: waiters look again at least this often, notified or not
_RECHECK_SECONDS = 0.5
_known: dict[int, tuple[float, frozenset[str]]] = {}  # id(store) -> (valid until, names)
_known_lock = threading.Lock()


def limits_among(store: Store, tags: Sequence[str]) -> list[str]:
    """The tags that name a limit, sorted (the order slots are taken in)."""
    now = time.monotonic()
    cached = _known.get(id(store))
    if cached is None or cached[0] < now:
        with _known_lock:
            names = frozenset(limit.name for limit in store.list_limits(now=utcnow()))
            cached = (now + _REFRESH_SECONDS, names)
            _known[id(store)] = cached
    return sorted({tag for tag in tags if tag in cached[1]})


def forget_known_limits() -> None:
    """Read the limits afresh at the next task (tests, and after `legato limit set`)."""
    with _known_lock:
        _known.clear()


@contextmanager
def holding(flow_ctx: FlowRunContext, names: Sequence[str], task_name: str) -> Iterator[None]:
    """Hold a slot of each limit in ``names`` for the duration of the block."""
    store = flow_ctx.store
    holder = new_id()
    with flow_ctx.lock:
        flow_ctx.held_slots.add(holder)
    try:
        for name in names:
            _take(flow_ctx, store, name, holder, task_name)
        yield
    finally:
        with flow_ctx.lock:
            flow_ctx.held_slots.discard(holder)
        store.release_limit_slots(holder)
        wake_waiters(store)  # this process's waiters need not wait for the notification


@asynccontextmanager
async def holding_async(
    flow_ctx: FlowRunContext, names: Sequence[str], task_name: str
) -> AsyncIterator[None]:
    """`holding` for async tasks: waiting yields to the event loop (the task holding
    the slot may be another coroutine of the same flow)."""
    store = flow_ctx.store
    holder = new_id()
    with flow_ctx.lock:
        flow_ctx.held_slots.add(holder)
    try:
        for name in names:
            await _take_async(flow_ctx, store, name, holder, task_name)
        yield
    finally:
        with flow_ctx.lock:
            flow_ctx.held_slots.discard(holder)
        store.release_limit_slots(holder)
        wake_waiters(store)  # this process's waiters need not wait for the notification


class LimitWaiters:
    """The tasks of this process waiting for slots of one store's limits.

    One `SharedListener` wakes them all; per limit, a turn makes sure only one
    of them asks the store at a time, and none asks again after a failed try
    until there is news (see the module's docstring).
    """

    def __init__(self, store: Store) -> None:
        ref = weakref.ref(store)

        def open_listener() -> ChangeListener | None:
            alive = ref()
            return None if alive is None else alive.listen([LIMIT_SLOTS_FREED])

        self.shared = SharedListener(
            open_listener, LIMIT_SLOTS_FREED, store.display_url, tick=_RECHECK_SECONDS
        )
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._trying: set[str] = set()  # limits a waiter is asking the store about
        self._failed_at: dict[str, int] = {}  # limit -> news count at its last failed try

    def turn(self, name: str, news: int) -> bool:
        """Whether the caller, having seen ``news``, should try ``name`` now (then it
        must call `turn_ended`)."""
        with self._lock:
            if name in self._trying or self._failed_at.get(name, -1) >= news:
                return False
            self._trying.add(name)
            return True

    def turn_ended(self, name: str, news: int, took: bool) -> None:
        with self._lock:
            self._trying.discard(name)
            if not took:
                self._failed_at[name] = max(news, self._failed_at.get(name, -1))
        self.shared.nudge()  # the next waiter's turn (or news that came meanwhile)


_waiters: weakref.WeakKeyDictionary[Store, LimitWaiters] = weakref.WeakKeyDictionary()
_waiters_lock = threading.Lock()


def limit_waiters(store: Store) -> LimitWaiters:
    """This process's waiters on ``store`` (made on first use)."""
    found = _waiters.get(store)
    if found is not None and found.pid == os.getpid():
        return found
    with _waiters_lock:
        found = _waiters.get(store)
        if found is None or found.pid != os.getpid():
            found = _waiters[store] = LimitWaiters(store)
        return found


def wake_waiters(store: Store) -> None:
    """Wake this process's tasks waiting for slots of ``store``'s limits, if any: they
    try again and look at their run (call it when a run is cancelled or stopped)."""
    found = _waiters.get(store)
    if found is not None and found.pid == os.getpid() and found.shared.waiters:
        found.shared.wake()


def _after_fork() -> None:
    # The parent's listener thread does not exist here and its locks may be held:
    # start afresh (keeping the parent's objects referenced, so that nothing of
    # theirs is finalized in the child).
    global _waiters, _waiters_lock
    _inherited.append(_waiters)
    _waiters = weakref.WeakKeyDictionary()
    _waiters_lock = threading.Lock()


_inherited: list[object] = []
os.register_at_fork(after_in_child=_after_fork)


def _try(store: Store, name: str, holder: str) -> bool:
    return store.acquire_limit_slot(name, holder, now=utcnow(), ttl_seconds=lease_seconds())


def _try_in_turn(waiters: LimitWaiters, store: Store, name: str, holder: str) -> bool:
    """Try for a slot if it is the caller's turn; False if it was not or no slot was free."""
    _, news = waiters.shared.snapshot()
    if not waiters.turn(name, news):
        return False
    took = False
    try:
        took = _try(store, name, holder)
    finally:
        waiters.turn_ended(name, news, took)
    return took


def _say_waiting(task_name: str, name: str) -> None:
    from legato.engine.logs import get_run_logger

    get_run_logger().info("task '%s' waits for a slot of limit '%s'", task_name, name)


def _take(flow_ctx: FlowRunContext, store: Store, name: str, holder: str, task_name: str) -> None:
    waiters = limit_waiters(store)
    if _try_in_turn(waiters, store, name, holder):
        return
    _say_waiting(task_name, name)
    shared = waiters.shared
    with shared.waiting():
        while True:
            mark, _ = shared.snapshot()
            if _try_in_turn(waiters, store, name, holder):
                return
            flow_ctx.check_cancelled()
            shared.wait(mark, 4 * _RECHECK_SECONDS)


async def _take_async(
    flow_ctx: FlowRunContext, store: Store, name: str, holder: str, task_name: str
) -> None:
    """`_take` for async tasks: waiting yields to the event loop (the task holding
    the slot may be another coroutine of the same flow)."""
    waiters = limit_waiters(store)
    if _try_in_turn(waiters, store, name, holder):
        return
    _say_waiting(task_name, name)
    shared = waiters.shared
    with shared.waiting():
        while True:
            mark, _ = shared.snapshot()
            if _try_in_turn(waiters, store, name, holder):
                return
            flow_ctx.check_cancelled()
            await shared.wait_async(mark, 4 * _RECHECK_SECONDS)


def run_holding(call: TaskCall, names: Sequence[str]) -> Any:
    """Run a task call's attempts holding a slot of each limit in ``names``."""
    slots = holding(call.flow_ctx, names, call.task.name)
    try:
        slots.__enter__()
    except BaseException as exc:  # cancelled while waiting for a slot
        call._end_with(exc)
        raise
    try:
        return call._attempts()
    finally:
        slots.__exit__(None, None, None)


async def run_holding_async(call: TaskCall, names: Sequence[str]) -> Any:
    """`run_holding` for async task calls."""
    slots = holding_async(call.flow_ctx, names, call.task.name)
    try:
        await slots.__aenter__()
    except BaseException as exc:  # cancelled while waiting for a slot
        call._end_with(exc)
        raise
    try:
        return await call._attempts_async()
    finally:
        await slots.__aexit__(None, None, None)
