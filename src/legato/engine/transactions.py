"""Transactions: group task calls so a failure compensates the completed ones.

Inside ``with legato.transaction():``, every task that completes (or replays)
and has ``on_rollback`` or ``on_commit`` hooks is remembered. If the block
exits with an exception, the rollback hooks run newest first (a saga), and the
task runs are marked rolled back, so a later resume runs them again. A block
that exits normally hands its tasks to the enclosing transaction, if any; the
outermost one commits: the commit hooks run in completion order. Pause and
cancellation signals neither commit nor roll back: the run is not over.

``commit_mode`` follows Prefect: LAZY (the default) commits with the outermost
block; EAGER commits each task as it completes (its commit hooks run at once
and a later failure no longer compensates it); OFF never commits, and an
outermost OFF block rolls its tasks back even when it exits normally, as
nothing is left to take responsibility for them. A nested block without a
mode inherits its parent's. Values put with ``txn.set`` are read with
``txn.get`` by code and tasks inside the block and by the hooks; a nested
block reads its parents' values unless it sets its own.
"""

from __future__ import annotations

import copy
import enum
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from legato.engine.context import FLOW_CONTEXT
from legato.errors import ConfigurationError, TaskCallError
from legato.records import TaskRun
from legato.states import State, StateType


class CommitMode(enum.Enum):
    """When a transaction's tasks commit (Prefect's ``CommitMode``)."""

    EAGER = "EAGER"
    LAZY = "LAZY"
    OFF = "OFF"


class IsolationLevel(enum.Enum):
    """Accepted as in Prefect; without a transaction key, both levels behave the same."""

    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


class TransactionState(enum.Enum):
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"  # exited normally; its parent commits or rolls it back
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


@dataclass
class _Entry:
    task: Any
    task_run: TaskRun
    value: Any
    txn: Transaction  # the innermost block the task completed in: what hooks receive


class Transaction:
    def __init__(
        self,
        parent: Transaction | None = None,
        commit_mode: CommitMode = CommitMode.LAZY,
        isolation_level: IsolationLevel = IsolationLevel.READ_COMMITTED,
    ) -> None:
        self.parent = parent
        self.commit_mode = commit_mode
        self.isolation_level = isolation_level
        self.state = TransactionState.ACTIVE
        self.entries: list[_Entry] = []
        self.children: list[Transaction] = []
        self._values: dict[str, Any] = {}

    def add(self, task: Any, task_run: TaskRun, value: Any) -> None:
        """Remember a completed task; under EAGER, commit it at once."""
        entry = _Entry(task, task_run, value, self)
        if self.commit_mode is CommitMode.EAGER:
            _commit_entries([entry])
        else:
            self.entries.append(entry)

    def set(self, name: str, value: Any) -> None:
        """Store a value for the code, tasks and hooks of this transaction."""
        self._values[name] = value

    def get(self, name: str, default: Any = None) -> Any:
        """A copy of a stored value: this transaction's, else its parents', else ``default``.

        Changing the returned object does not change the stored value; call `set`.
        """
        txn: Transaction | None = self
        while txn is not None:
            if name in txn._values:
                return copy.deepcopy(txn._values[name])
            txn = txn.parent
        return default

    def is_active(self) -> bool:
        return self.state is TransactionState.ACTIVE

    def is_staged(self) -> bool:
        return self.state is TransactionState.STAGED

    def is_committed(self) -> bool:
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        return self.state is TransactionState.ROLLED_BACK

    def __repr__(self) -> str:
        return f"Transaction(state={self.state.value}, commit_mode={self.commit_mode.value})"

    def _settle(self, state: TransactionState) -> None:
        """Set the final state of this block and of the blocks it took over."""
        if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
            return
        self.state = state
        for child in self.children:
            child._settle(state)


@contextmanager
def transaction(
    key: str | None = None,
    commit_mode: CommitMode | None = None,
    isolation_level: IsolationLevel | None = None,
) -> Iterator[Transaction]:
    """Group task calls; on an exception, run their ``on_rollback`` hooks in reverse.

    On a normal exit of the outermost block, their ``on_commit`` hooks run in
    completion order (see the module docstring for ``commit_mode``).
    """
    ctx = FLOW_CONTEXT.get()
    if ctx is None:
        raise TaskCallError("legato.transaction() must be used inside a @flow function")
    if key is not None:
        raise ConfigurationError(
            f"transaction(key={key!r}): keyed transactions (results recorded across runs) "
            f"are not supported by legato yet; drop key= (a cache_key_fn on the tasks "
            f"gives them results recorded across runs)"
        )
    if commit_mode is not None and not isinstance(commit_mode, CommitMode):
        raise ConfigurationError(
            f"transaction(commit_mode=...) takes a legato.transactions.CommitMode "
            f"(EAGER, LAZY or OFF), not {commit_mode!r}"
        )
    if isolation_level is not None and not isinstance(isolation_level, IsolationLevel):
        raise ConfigurationError(
            f"transaction(isolation_level=...) takes a legato.transactions.IsolationLevel "
            f"(READ_COMMITTED or SERIALIZABLE), not {isolation_level!r}"
        )
    parent: Transaction | None = ctx.transactions[-1] if ctx.transactions else None
    txn = Transaction(
        parent,
        commit_mode or (parent.commit_mode if parent else CommitMode.LAZY),
        isolation_level or (parent.isolation_level if parent else IsolationLevel.READ_COMMITTED),
    )
    ctx.transactions.append(txn)
    submitted_before = len(ctx.outstanding)
    try:
        yield txn
        # Tasks submitted inside the block belong to it: they finish (joining this
        # transaction as they complete) before it commits or hands them on.
        for future in ctx.outstanding[submitted_before:]:
            future.wait()
    except Exception:
        # Likewise on a failure, so that their effects are compensated too.
        for future in ctx.outstanding[submitted_before:]:
            future.wait()
        ctx.transactions.remove(txn)
        _roll_back(ctx, txn)
        raise
    except BaseException:
        ctx.transactions.remove(txn)
        raise
    ctx.transactions.remove(txn)
    if txn.commit_mode is CommitMode.EAGER:
        txn._settle(TransactionState.COMMITTED)  # its tasks committed as they completed
    if parent is not None:
        if txn.is_active():
            txn.state = TransactionState.STAGED
        parent.entries.extend(txn.entries)
        parent.children.append(txn)
    elif txn.commit_mode is CommitMode.OFF:
        _roll_back(ctx, txn)  # nothing is left to take responsibility for its tasks
    elif txn.commit_mode is CommitMode.LAZY:
        _commit_entries(txn.entries)
        txn._settle(TransactionState.COMMITTED)


def _commit_entries(entries: list[_Entry]) -> None:
    from legato.engine.logs import get_run_logger

    logger = get_run_logger()
    for entry in entries:
        for hook in entry.task.on_commit:
            _run_hook("on_commit", hook, entry, logger, "the other hooks still run")


def _roll_back(ctx: Any, txn: Transaction) -> None:
    from legato.engine.logs import get_run_logger

    logger = get_run_logger()
    rolled: list[str] = []
    for entry in reversed(txn.entries):
        if not entry.task.on_rollback:
            continue  # joined for its commit hooks only: nothing to compensate
        for hook in entry.task.on_rollback:
            _run_hook("on_rollback", hook, entry, logger, "continuing the rollback")
        rolled.append(entry.task_run.id)
        logger.info("rolled back task %s", entry.task_run.call_key)
    txn._settle(TransactionState.ROLLED_BACK)
    if rolled:
        ctx.store.mark_rolled_back(rolled, ctx.owner_token)


def _run_hook(kind: str, hook: Callable[..., Any], entry: _Entry, logger: Any, then: str) -> None:
    """Call a hook as Prefect does, ``hook(txn)``, or in legato's ``(task, task_run, state)``."""
    try:
        if _takes_transaction(kind, hook, entry):
            hook(entry.txn)
        else:
            state = State(StateType.COMPLETED, run_id=entry.task_run.id, _value=entry.value)
            hook(entry.task, entry.task_run, state)
    except Exception as exc:
        logger.error(
            "%s hook of task %s raised %s: %s; %s",
            kind,
            entry.task_run.call_key,
            type(exc).__name__,
            exc,
            then,
        )


def _takes_transaction(kind: str, hook: Callable[..., Any], entry: _Entry) -> bool:
    """True for a hook of one positional parameter; False for legato's three."""
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):
        return False  # no signature to read (some builtins): legato's form
    try:
        signature.bind(None, None, None)
        return False
    except TypeError:
        pass
    try:
        signature.bind(None)
        return True
    except TypeError:
        name = getattr(hook, "__qualname__", repr(hook))
        raise ConfigurationError(
            f"{kind} hook {name} of task {entry.task.name} must take one argument "
            f"(the transaction) or three (task, task_run, state); it takes {signature}"
        ) from None
