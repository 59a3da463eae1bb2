"""The PostgreSQL store backend: one database shared by many processes and machines.

Needs the ``postgres`` extra (``pip install 'legato[postgres]'``). Importing
this package does not import psycopg; ``PostgresStore`` does, on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legato.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from legato.store.postgres.store import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
