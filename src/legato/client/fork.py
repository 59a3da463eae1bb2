"""The fork methods of `legato.client.Client`: a new run of a run's flow that replays
what the run recorded before a step and executes again from it (`legato.engine.fork`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from legato.engine.calls import check_changed_args, find_flow, resolve_run_id, resume_run
from legato.engine.fork import create_fork, plan_fork
from legato.errors import RunNotFoundError

if TYPE_CHECKING:
    from legato.engine.observer import RunObserver
    from legato.flows import Flow
    from legato.records import FlowRun
    from legato.states import State
    from legato.store.base import Store


class ForkClientOps:
    """Forks of flow runs."""

    @property
    def store(self) -> Store:  # provided by Client
        raise NotImplementedError

    def create_fork(
        self,
        id_or_prefix: str,
        from_key: str,
        *,
        queue: bool = False,
        flow: Flow[Any, Any] | None = None,
    ) -> FlowRun:
        """Create a fork of a run from the step at ``from_key``, without running it.

        ``queue``: scheduled on the source's work queue for a worker (a run from a
        deployment only); otherwise pending, for `start_fork` (or ``legato resume``)
        where the flow's code is. The flow is loaded first (``flow`` given, or found
        from the run), so a fork whose code cannot load is never created."""
        run_id = resolve_run_id(self.store, id_or_prefix)
        source = self.store.get_flow_run(run_id)
        if source is None:
            raise RunNotFoundError(id_or_prefix)
        plan = plan_fork(self.store, source, from_key)
        if not queue and flow is None:
            find_flow(source)
        return create_fork(self.store, plan, queue=queue)

    def start_fork(
        self,
        fork_id: str,
        *,
        flow: Flow[Any, Any] | None = None,
        observer: RunObserver | None = None,
        on_changed_args: str = "error",
    ) -> State:
        """Run a fork made by `create_fork` in this process; its final state.
        ``on_changed_args`` as for `Client.resume_run`, for the replayed steps."""
        return resume_run(
            fork_id, flow=flow, observer=observer, store=self.store, on_changed_args=on_changed_args
        )

    def fork_run(
        self,
        id_or_prefix: str,
        from_key: str,
        *,
        start: bool = True,
        flow: Flow[Any, Any] | None = None,
        observer: RunObserver | None = None,
        on_changed_args: str = "error",
    ) -> FlowRun:
        """Fork a run from the step at ``from_key``: a new run of the same flow, with
        the same parameters and the tag ``forked-from:<id>``, that replays the steps
        recorded before that step and executes that step and what follows again.

        ``start``: run it here now and return it as it ended; otherwise queue it for
        a worker of the source's work queue (`RunStateError` for a run that came
        from no deployment) and return it scheduled."""
        check_changed_args(on_changed_args)
        fork = self.create_fork(id_or_prefix, from_key, queue=not start, flow=flow)
        if not start:
            return fork
        self.start_fork(fork.id, flow=flow, observer=observer, on_changed_args=on_changed_args)
        found = self.store.get_flow_run(fork.id)
        if found is None:
            raise RunNotFoundError(fork.id)
        return found
