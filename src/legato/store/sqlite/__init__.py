"""The SQLite store backend (the embedded default)."""

from legato.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
