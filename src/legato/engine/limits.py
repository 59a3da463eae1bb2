"""Global limits for tasks: a task whose tags name limits holds a slot of each while it runs.

Which tags are limits is read from the store at most every few seconds per
process (a limit set just now applies within ``_REFRESH_SECONDS``), so a task
whose tags name no limit costs a dictionary lookup, and an untagged task
nothing at all. Slots are taken in name order (two tasks needing the same two
limits cannot deadlock), held under the run's lease (the run's monitor renews
them each heartbeat; a crashed process's slots free themselves when the lease
lapses), and given back when the task ends, however it ends. A task waiting
for a slot wakes when another process gives one back, and stops waiting if
its run is cancelled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from legato.engine.ids import new_id
from legato.engine.liveness import lease_seconds
from legato.records import utcnow
from legato.store.notifications import LIMIT_SLOTS_FREED

if TYPE_CHECKING:
    from legato.engine.context import FlowRunContext
    from legato.engine.task_engine import TaskCall
    from legato.store.base import Store

_REFRESH_SECONDS = 5.0
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


@asynccontextmanager
async def holding_async(
    flow_ctx: FlowRunContext, names: Sequence[str], task_name: str
) -> AsyncIterator[None]:
    """`holding` for async tasks: waiting yields to the event loop (the task holding
    the slot may be another coroutine of the same flow)."""
    import asyncio

    store = flow_ctx.store
    holder = new_id()
    with flow_ctx.lock:
        flow_ctx.held_slots.add(holder)
    try:
        for name in names:
            delay = 0.05
            while not _try(store, name, holder):
                _say_waiting(task_name, name, delay)
                flow_ctx.check_cancelled()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        yield
    finally:
        with flow_ctx.lock:
            flow_ctx.held_slots.discard(holder)
        store.release_limit_slots(holder)


def _try(store: Store, name: str, holder: str) -> bool:
    return store.acquire_limit_slot(name, holder, now=utcnow(), ttl_seconds=lease_seconds())


def _say_waiting(task_name: str, name: str, delay: float) -> None:
    if delay == 0.05:  # the first wait only
        from legato.engine.logs import get_run_logger

        get_run_logger().info("task '%s' waits for a slot of limit '%s'", task_name, name)


def _take(flow_ctx: FlowRunContext, store: Store, name: str, holder: str, task_name: str) -> None:
    if _try(store, name, holder):
        return
    _say_waiting(task_name, name, 0.05)
    delay = 0.05
    with store.listen([LIMIT_SLOTS_FREED]) as listener:
        while not _try(store, name, holder):
            flow_ctx.check_cancelled()
            listener.wait(delay)  # a slot given back wakes us; a rate window just passes
            delay = min(delay * 2, 1.0)


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
