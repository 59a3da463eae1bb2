"""Transactions, under Prefect's module name: ``from legato.transactions import transaction``.

The machinery lives in `legato.engine.transactions`; this module is the public face.
"""

from __future__ import annotations

from legato.engine.context import FLOW_CONTEXT
from legato.engine.transactions import (
    CommitMode,
    IsolationLevel,
    Transaction,
    TransactionState,
    transaction,
)

__all__ = [
    "CommitMode",
    "IsolationLevel",
    "Transaction",
    "TransactionState",
    "get_transaction",
    "transaction",
]


def get_transaction() -> Transaction | None:
    """The innermost open ``transaction()`` block of the current flow run, or None.

    Inside a task too: the task sees the innermost block of its flow run.
    """
    ctx = FLOW_CONTEXT.get()
    if ctx is None or not ctx.transactions:
        return None
    return ctx.transactions[-1]
