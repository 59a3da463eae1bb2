"""`legato.sleep`: a durable sleep inside a flow.

The wake-up time is stored at the sleep's key (``sleep[n]``, or the ``key``
given) the first time the call is reached, so a resumed or replayed run sleeps
only what is left. In a run executed by a worker, a sleep longer than
``LEGATO_SLEEP_RELEASE_SECONDS`` (default 30) ends the attempt instead: the
run goes back to its queue due at the wake-up time, the worker slot is free
meanwhile, and the run replays up to here when a worker picks it up again.
Elsewhere (a run in this process, a short sleep) it sleeps here, waking each
second to notice cancellation.
"""

from __future__ import annotations

import json
from datetime import timedelta

from legato import _clock
from legato import tracing as _tracing
from legato.engine.context import FLOW_CONTEXT, TASK_CONTEXT, current_scope
from legato.errors import ConfigurationError, SleepSignal
from legato.settings import env_float

DEFAULT_RELEASE_SECONDS = 30.0


def sleep(seconds: float | timedelta, *, key: str | None = None) -> None:
    """Sleep ``seconds`` (or a timedelta); inside a flow, durably (see the module
    documentation)."""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    if not isinstance(seconds, int | float) or seconds != seconds or seconds < 0:
        raise ConfigurationError(f"legato.sleep({seconds!r}): give a number of seconds >= 0")
    ctx = FLOW_CONTEXT.get()
    if ctx is None:
        _clock.sleep(seconds)
        return
    task_ctx = TASK_CONTEXT.get()
    if task_ctx is not None and task_ctx.flow_ctx is ctx:
        _clock.sleep(seconds)  # inside a task: an ordinary sleep, part of the task's work
        return
    ctx.check_cancelled()
    if key:
        ctx.claim_key("sleep", key, f"sleep key '{key}'")
    sleep_key = key or current_scope(ctx).next_key("sleep")
    store, run = ctx.store, ctx.run
    until = None
    if ctx.recorded is not None:
        found, value = store.get_run_input(run.id, sleep_key)
        if found and value:
            until = float(json.loads(value)["until"])
    if until is None:
        until = _clock.time() + seconds
        store.save_run_input(run.id, sleep_key, json.dumps({"until": until}))
    remaining = until - _clock.time()
    if remaining <= 0:
        return
    tracer = _tracing.ACTIVE
    if tracer is not None:  # traces on: the sleep is an event of the attempt's span
        details = {"legato.sleep.key": sleep_key, "legato.sleep.seconds": remaining}
        tracer.event(run.id, "legato.sleep", details)
    release = env_float("LEGATO_SLEEP_RELEASE_SECONDS", DEFAULT_RELEASE_SECONDS)
    if run.work_queue is not None and remaining > release:
        raise SleepSignal(sleep_key, until)
    while remaining > 0:
        _clock.sleep(_clock.poll_slice(remaining, 1.0))
        ctx.check_cancelled()
        remaining = until - _clock.time()
