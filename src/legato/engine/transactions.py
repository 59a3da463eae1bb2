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

A keyed block (``transaction(key="...")``) is idempotent across runs: when it
commits, the results of the tasks called in it and its own values are stored
under the key (`Store.save_transaction_records`), in one store transaction
before the commit hooks run. A later block with that key finds the record on
entry: it is committed already (``txn.is_committed()``), ``txn.get`` reads the
recorded values, and the N-th call of task T inside it returns the N-th
recorded result of T without running, recorded as a cached task run. Calls
are counted per block in submission order on the flow's thread. Inside
several committed keyed blocks, the outermost one answers (its record covers
the blocks nested in it). A call with no recorded result (a task that did not
persist it, or more calls than last time) runs for real. SERIALIZABLE claims
the key first (see `_look_up`).
"""

from __future__ import annotations

import copy
import enum
import inspect
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from legato.engine.context import FLOW_CONTEXT
from legato.errors import ConfigurationError, InvalidTransactionKeyError, TaskCallError
from legato.records import StoredResult, TaskRun
from legato.states import State, StateType


class CommitMode(enum.Enum):
    """When a transaction's tasks commit (Prefect's ``CommitMode``)."""

    EAGER = "EAGER"
    LAZY = "LAZY"
    OFF = "OFF"


class IsolationLevel(enum.Enum):
    """For keyed blocks: SERIALIZABLE lets one of several runs entering a block with
    the same key at once run it, the others wait and then find it committed;
    READ_COMMITTED (the default) lets them all run it. No effect without a key."""

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
        self.key: str | None = None
        # A keyed block: calls counted per task name, the task runs that completed
        # at each (name, ordinal), and, when its key committed before, the results
        # recorded then (it answers its calls with them).
        self._counts: dict[str, int] = {}
        self._completed: dict[tuple[str, int], TaskRun] = {}
        self._recorded: dict[tuple[str, int], StoredResult] | None = None
        self._claims: list[str] = []  # outermost block: leases of SERIALIZABLE keys held
        self._lock = threading.Lock()

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
        key = f"key={self.key!r}, " if self.key is not None else ""
        return f"Transaction({key}state={self.state.value}, commit_mode={self.commit_mode.value})"

    def _next_ordinal(self, task_name: str) -> int:
        with self._lock:
            n = self._counts.get(task_name, 0)
            self._counts[task_name] = n + 1
            return n

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
        _check_key(key)
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
    if key is not None:
        txn.key = key
        found = _look_up(ctx, txn, key)
        if found is not None:
            txn._values, txn._recorded = _decode(found.payload, key)
            txn.state = TransactionState.COMMITTED
    try:
        with _block(ctx, txn, parent):
            yield txn
    finally:
        if parent is None and txn._claims:
            _release_claims(ctx, txn._claims)


@contextmanager
def _block(ctx: Any, txn: Transaction, parent: Transaction | None) -> Iterator[None]:
    ctx.transactions.append(txn)
    submitted_before = len(ctx.outstanding)
    try:
        yield
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
        _save_records(ctx, txn)
        txn._settle(TransactionState.COMMITTED)  # its tasks committed as they completed
    if parent is not None:
        if txn.is_active():
            txn.state = TransactionState.STAGED
        parent.entries.extend(txn.entries)
        parent.children.append(txn)
    elif txn.commit_mode is CommitMode.OFF:
        _roll_back(ctx, txn)  # nothing is left to take responsibility for its tasks
    elif txn.commit_mode is CommitMode.LAZY:
        _save_records(ctx, txn)  # first: commit hooks run only once the record is stored
        _commit_entries(txn.entries)
        txn._settle(TransactionState.COMMITTED)


MAX_KEY_LENGTH = 512
# A SERIALIZABLE claim is a lease this long; its holder's run ending frees it sooner.
CLAIM_SECONDS = 24 * 3600.0
# Runs in these states still work on a claim they hold.
_WORKING = frozenset({StateType.RUNNING, StateType.PENDING})


def _look_up(ctx: Any, txn: Transaction, key: str) -> Any:
    """The key's record; under SERIALIZABLE, without one, first claim the key.

    The claim is the store lease ``transaction:<key>`` held by the flow run (see
    `Store.acquire_lease`) until the outermost block ends, so that of several runs
    entering the block at once only one runs it; the others wait, then find its
    record (or, when it failed, take the claim and run it). A claim whose run is
    no longer running or pending (it crashed, failed or paused) is taken over.
    """
    store = ctx.store
    if txn.isolation_level is not IsolationLevel.SERIALIZABLE:
        return store.get_transaction_record(key)
    root = txn
    while root.parent is not None:
        root = root.parent
    name = f"transaction:{key}"
    holder = ctx.run.id
    delay = 0.005
    while True:
        found = store.get_transaction_record(key)
        if found is not None:
            return found
        if store.acquire_lease(name, holder, now=store.clock(), ttl_seconds=CLAIM_SECONDS):
            found = store.get_transaction_record(key)  # committed just before we took it
            if found is not None:
                store.release_lease(name, holder)
                return found
            if name not in root._claims:
                root._claims.append(name)
            return None
        lease = store.get_lease(name)
        if lease is not None and lease.holder != holder:
            other = store.get_flow_run(lease.holder)
            if other is None or other.state not in _WORKING:
                store.release_lease(name, lease.holder)
                continue
        ctx.check_cancelled()
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def _release_claims(ctx: Any, claims: list[str]) -> None:
    for name in claims:
        ctx.store.release_lease(name, ctx.run.id)
    claims.clear()


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key.strip():
        raise InvalidTransactionKeyError(
            f"transaction(key={key!r}): the key must be a non-empty string naming the "
            f'work done once, e.g. key=f"load-{{day}}"; pass key=None for an unkeyed block'
        )
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidTransactionKeyError(
            f"transaction(key='{key[:40]}...'): the key is {len(key)} characters long, "
            f"more than {MAX_KEY_LENGTH}; use a shorter key (a hash of long parts)"
        )


class KeyedCall:
    """Where one task call stands in the open keyed blocks: its ordinal in each
    (to record its task run when it completes) and, when a committed block
    answers it, the result recorded for it (None: it runs)."""

    __slots__ = ("recorded", "slots")

    def __init__(self, slots: list[tuple[Transaction, int]], recorded: StoredResult | None):
        self.slots = slots
        self.recorded = recorded

    def completed(self, task_run: TaskRun) -> None:
        for txn, n in self.slots:
            txn._completed[(task_run.task_name, n)] = task_run


def keyed_call(transactions: list[Transaction], task_name: str) -> KeyedCall | None:
    """Count a task call in the open keyed blocks (outermost first); None outside any."""
    slots: list[tuple[Transaction, int]] = []
    recorded: StoredResult | None = None
    answered = False
    for txn in transactions:
        if txn.key is None:
            continue
        n = txn._next_ordinal(task_name)
        if txn._recorded is not None:
            if not answered:  # the outermost committed block answers
                answered = True
                recorded = txn._recorded.get((task_name, n))
        elif txn.is_active():
            slots.append((txn, n))
    return KeyedCall(slots, recorded) if slots or answered else None


def _pending_records(txn: Transaction) -> list[Transaction]:
    """The keyed blocks of ``txn`` and of the blocks it took over that commit now."""
    if txn.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
        return []
    found = [txn] if txn.key is not None else []
    for child in txn.children:
        found.extend(_pending_records(child))
    return found


def _save_records(ctx: Any, txn: Transaction) -> None:
    from legato.records import TransactionRecord

    pending = _pending_records(txn)
    if not pending:
        return
    store = ctx.store
    now = store.clock()
    records = [TransactionRecord(t.key or "", ctx.run.id, now, _encode(store, t)) for t in pending]
    store.save_transaction_records(records)


def _encode(store: Any, txn: Transaction) -> bytes:
    results: dict[tuple[str, int], StoredResult] = {}
    for slot, task_run in sorted(txn._completed.items()):
        if task_run.has_result and not task_run.rolled_back:
            stored = store.get_task_result(task_run.id)
            if stored is not None:
                results[slot] = stored
    try:
        return pickle.dumps(
            {"values": txn._values, "results": results}, protocol=pickle.HIGHEST_PROTOCOL
        )
    except Exception as exc:
        raise ConfigurationError(
            f"transaction(key={txn.key!r}) cannot be recorded: a value given to txn.set() "
            f"cannot be pickled ({type(exc).__name__}: {exc}); set only picklable values "
            f"in a keyed transaction"
        ) from exc


def _decode(payload: bytes, key: str) -> tuple[dict[str, Any], dict[tuple[str, int], StoredResult]]:
    try:
        data = pickle.loads(payload)
        return dict(data["values"]), dict(data["results"])
    except Exception as exc:
        raise ConfigurationError(
            f"the record of transaction key {key!r} cannot be read ({type(exc).__name__}: "
            f"{exc}); is the code that defines its values importable? To run the block "
            f"again, delete the record (Store.delete_transaction_record)"
        ) from exc


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
        gone = set(rolled)
        outer = txn.parent
        while outer is not None:  # compensated: not results a keyed block may record
            for slot, task_run in list(outer._completed.items()):
                if task_run.id in gone:
                    del outer._completed[slot]
            outer = outer.parent


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
