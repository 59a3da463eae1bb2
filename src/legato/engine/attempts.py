"""The attempt history of a task run that took more than one attempt.

Kept only when a call is retried, or re-executed by a resume after failing:
a single successful attempt costs nothing here. The timeline draws one bar
per attempt from it.
"""

from __future__ import annotations

from legato.records import AttemptInfo, ErrorInfo, TaskRun


def brief(error: ErrorInfo | None) -> ErrorInfo | None:
    """An error's type and message, without the traceback (the run keeps that)."""
    return None if error is None else ErrorInfo(error.type, error.message)


def history_before(previous: TaskRun | None) -> list[AttemptInfo]:
    """The attempts earlier executions recorded at this call key: their history,
    or the one attempt a task run recorded without one (failed, or left running
    by a process that died)."""
    if previous is None:
        return []
    if previous.attempt_log:
        return list(previous.attempt_log)
    if previous.attempts > 0:
        final = previous.state.is_final
        return [
            AttemptInfo(
                attempt=previous.attempts,
                start_time=previous.start_time,
                end_time=previous.end_time if final else None,
                state=previous.state.value if final else "crashed",
                error=brief(previous.error),
            )
        ]
    return []
