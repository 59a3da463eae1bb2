"""Pausing and resuming flow runs, under Prefect's module name.

In legato a pause always suspends: the flow body unwinds, the run is recorded
as paused and the process is free; on resume the body runs again and the
completed task calls replay. So `suspend_flow_run` is `pause_flow_run` with
Prefect's default timeout of one hour.
"""

from __future__ import annotations

from typing import Any, TypeVar

from legato.engine.calls import resume_flow_run
from legato.engine.context import FLOW_CONTEXT
from legato.engine.pause import pause_flow_run
from legato.errors import ConfigurationError

__all__ = ["pause_flow_run", "resume_flow_run", "suspend_flow_run"]

T = TypeVar("T")


def suspend_flow_run(
    wait_for_input: type[T] | None = None,
    flow_run_id: str | None = None,
    timeout: float | None = 3600,
    key: str | None = None,
) -> Any:
    """Suspend the current flow run until it is resumed; the process is released.

    Takes Prefect's arguments: ``wait_for_input`` (a `legato.RunInput` subclass,
    whose validated instance is returned on resume), ``timeout`` (seconds after
    which a run still suspended fails; default one hour, None for no limit) and
    ``key``. ``flow_run_id`` may only name the current run: legato suspends a run
    from inside its own flow body.
    """
    ctx = FLOW_CONTEXT.get()
    if flow_run_id is not None and (ctx is None or str(flow_run_id) != ctx.run.id):
        raise ConfigurationError(
            f"suspend_flow_run(flow_run_id={flow_run_id!r}): legato suspends only the "
            f"current run, from its flow body; to stop another run use `legato cancel`"
        )
    return pause_flow_run(wait_for_input, timeout=timeout, key=key)
