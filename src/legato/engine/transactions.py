"""Transactions: group task calls so a failure compensates the completed ones.

Inside ``with legato.transaction():``, every task that completes (or replays)
and has ``on_rollback`` hooks is remembered. If the block exits with an
exception, those hooks run newest first (a saga), and the task runs are
marked rolled back, so a later resume runs them again. A block that exits
normally hands its tasks to the enclosing transaction, if any. Pause and
cancellation signals do not roll back: the run is not over.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from legato.engine.context import FLOW_CONTEXT
from legato.errors import TaskCallError
from legato.records import TaskRun
from legato.states import State, StateType


class Transaction:
    def __init__(self) -> None:
        self.entries: list[tuple[Any, TaskRun, Any]] = []

    def add(self, task: Any, task_run: TaskRun, value: Any) -> None:
        self.entries.append((task, task_run, value))


@contextmanager
def transaction() -> Iterator[Transaction]:
    """Group task calls; on an exception, run their ``on_rollback`` hooks in reverse."""
    ctx = FLOW_CONTEXT.get()
    if ctx is None:
        raise TaskCallError("legato.transaction() must be used inside a @flow function")
    txn = Transaction()
    ctx.transactions.append(txn)
    submitted_before = len(ctx.outstanding)
    try:
        yield txn
    except Exception:
        # Tasks submitted inside the block may still run: let them finish (joining
        # this transaction as they complete) so that their effects are compensated too.
        for future in ctx.outstanding[submitted_before:]:
            future.wait()
        ctx.transactions.remove(txn)
        _roll_back(ctx, txn)
        raise
    except BaseException:
        ctx.transactions.remove(txn)
        raise
    ctx.transactions.remove(txn)
    if ctx.transactions:
        ctx.transactions[-1].entries.extend(txn.entries)


def _roll_back(ctx: Any, txn: Transaction) -> None:
    from legato.engine.logs import get_run_logger

    logger = get_run_logger()
    rolled: list[str] = []
    for task, task_run, value in reversed(txn.entries):
        state = State(StateType.COMPLETED, run_id=task_run.id, _value=value)
        for hook in task.on_rollback:
            try:
                hook(task, task_run, state)
            except Exception as exc:
                logger.error(
                    "on_rollback hook of task %s raised %s: %s; continuing the rollback",
                    task_run.call_key,
                    type(exc).__name__,
                    exc,
                )
        rolled.append(task_run.id)
        logger.info("rolled back task %s", task_run.call_key)
    if rolled:
        ctx.store.mark_rolled_back(rolled, ctx.owner_token)
