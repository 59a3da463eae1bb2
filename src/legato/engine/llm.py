"""The engine's side of durable model calls: the store reads and fenced writes that
`legato.ai` needs while a model call's task body runs (`legato.ai.step`).

A model call is a task run named ``llm`` (its result is the accepted answer); each
answered try is also written here as it arrives, fenced by the run's owner, so a
resume finds every try already paid for.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

from legato._llm_records import LLMCallRecord
from legato.engine.context import TASK_CONTEXT, TaskRunContext
from legato.errors import TaskCallError

if TYPE_CHECKING:
    from legato.engine.context import FlowRunContext
    from legato.store.base import Store

# Prompt versions each open store is known to hold (so a version is written once).
_saved_prompts: weakref.WeakKeyDictionary[Store, set[tuple[str, str]]] = weakref.WeakKeyDictionary()
_saved_lock = threading.Lock()


def current_step(what: str) -> TaskRunContext:
    ctx = TASK_CONTEXT.get()
    if ctx is None:
        raise TaskCallError(f"{what} must run as a model call's step (inside legato.ai.call)")
    return ctx


def recorded_tries(step: TaskRunContext) -> list[LLMCallRecord]:
    """The tries an earlier execution (or attempt) of this call already recorded."""
    flow_ctx = step.flow_ctx
    if flow_ctx.recorded is None:
        return []  # the run's first execution: nothing can have been recorded before
    return flow_ctx.store.list_llm_calls(flow_ctx.run.id, call_key=step.call_key)


def record_try(step: TaskRunContext, record: LLMCallRecord) -> None:
    """Write one answered try, fenced by the run's owner (RunOwnershipLost when lost)."""
    flow_ctx = step.flow_ctx
    flow_ctx.store.record_llm_call(record, flow_ctx.owner_token)


def save_prompt(flow_ctx: FlowRunContext, name: str, version: str, text: str) -> None:
    """Store a prompt version the first time this process uses it with this store."""
    store = flow_ctx.store
    with _saved_lock:
        if (name, version) in _saved_prompts.get(store, ()):
            return
    from legato._clock import now

    store.save_prompt(name, text, version, now=now())
    with _saved_lock:
        _saved_prompts.setdefault(store, set()).add((name, version))
