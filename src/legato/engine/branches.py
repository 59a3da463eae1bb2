"""Call-key scopes for concurrent asyncio branches.

In ``await asyncio.gather(branch(1), branch(2))`` both branches call tasks
concurrently; keys handed out in the order calls happen would follow timing,
and on resume (where replayed calls return at once) the order changes. So
every asyncio task created while a flow run is current gets a scope of its
own, named after what it runs: the coroutine's function and the arguments it
was called with, ``branch[1]/fetch[0]``. Not the order of creation:
``asyncio.as_completed`` creates its tasks from a set, in no fixed order.
Two branches of the same function with equal arguments are told apart by
creation order (``branch[1]#1/``): they do the same work, so which one gets
which name does not matter. Arguments are spelled as in the task-call
fingerprint (engine/fingerprint.py); long ones by a digest.

The scope is assigned when the task is created, through the event loop's
task factory: legato installs one that wraps whatever factory the loop had,
only touches tasks created inside a flow run, and is removed when the
outermost async flow run that installed it ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
from collections.abc import Callable, Coroutine
from typing import Any

from legato.engine.context import BRANCH, FLOW_CONTEXT, TASK_CONTEXT, Branch, current_scope
from legato.engine.fingerprint import fingerprint

TaskFactory = Callable[..., "asyncio.Future[Any]"]


class _BranchingFactory:
    """A task factory that gives each task created inside a flow run its own scope."""

    __slots__ = ("inner",)

    def __init__(self, inner: TaskFactory | None) -> None:
        self.inner = inner

    def __call__(
        self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        flow_ctx = FLOW_CONTEXT.get()
        if flow_ctx is not None:
            given = kwargs.get("context")
            context = given.copy() if given is not None else contextvars.copy_context()
            task_ctx = TASK_CONTEXT.get()
            if task_ctx is not None and task_ctx.flow_ctx is not flow_ctx:
                task_ctx = None
            branch = Branch(current_scope(flow_ctx).branch(label(coro)), flow_ctx, task_ctx)
            context.run(BRANCH.set, branch)
            kwargs["context"] = context
        if self.inner is not None:
            return self.inner(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)


# A branch label longer than this spells its arguments as a digest.
MAX_LABEL_ARGS = 32


def label(coro: object) -> str:
    """``name[args]`` for a coroutine not yet started: its function's name and the
    arguments it holds; ``task[?]`` for an awaitable that shows neither."""
    frame = getattr(coro, "cr_frame", None)
    name = getattr(coro, "__name__", None)
    if frame is None or not isinstance(name, str):
        return "task[?]"
    params = dict(frame.f_locals)  # before the first step: just the arguments
    args = fingerprint(tuple(params), (), params)
    inner = args[1:-1].rstrip(",")
    if len(inner) > MAX_LABEL_ARGS or any(c in inner for c in "[]/#"):
        inner = (
            "#" + hashlib.blake2b(args.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
        )
    return f"{name}[{inner}]"


def install() -> Callable[[], None] | None:
    """Install the branching factory on the running loop; returns the function that
    removes it again, or None when it was there already."""
    loop = asyncio.get_running_loop()
    current: Any = loop.get_task_factory()
    if isinstance(current, _BranchingFactory):
        return None
    factory = _BranchingFactory(current)
    loop.set_task_factory(factory)  # type: ignore[arg-type]

    def uninstall() -> None:
        installed: Any = loop.get_task_factory()
        if installed is factory and not loop.is_closed():
            loop.set_task_factory(current)

    return uninstall
