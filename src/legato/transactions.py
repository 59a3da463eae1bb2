"""Transactions, under Prefect's module name: ``from legato.transactions import transaction``.

The machinery lives in `legato.engine.transactions`; this module is the public face.
"""

from __future__ import annotations

from legato.engine.context import FLOW_CONTEXT
from legato.engine.transactions import Transaction, transaction

__all__ = ["Transaction", "get_transaction", "transaction"]


def get_transaction() -> Transaction | None:
    """The innermost open ``transaction()`` block of the current flow run, or None."""
    ctx = FLOW_CONTEXT.get()
    if ctx is None or not ctx.transactions:
        return None
    return ctx.transactions[-1]
