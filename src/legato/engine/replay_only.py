"""The "replay only" hook: every task call is answered from a recording.

`legato.testing.replay` sets `ACTIVE` while it replays an exported run against
the current code of its flow in a throwaway store. `TaskCall.replayed` asks the
hook first (one module attribute check when no replay check is running), so no
task body runs: the hook answers each call from the recording, notes where
the code diverges, and stops the run where it cannot answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from legato.engine.context import FlowRunContext
    from legato.engine.task_engine import TaskCall


class ReplayOnlyHook(Protocol):
    def covers(self, flow_ctx: FlowRunContext) -> bool:
        """Whether calls of this flow run are answered by the hook."""

    def answer(self, call: TaskCall) -> tuple[bool, Any]:
        """(True, recorded value), or raise to stop or fail the run as recorded."""


ACTIVE: ReplayOnlyHook | None = None
