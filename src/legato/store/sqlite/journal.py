"""Folding the task run journal into ``task_runs`` (see docs/architecture.md)."""

from __future__ import annotations

import sqlite3

from legato.store.sqlite.sql import QUERIES

_JOURNAL_END = QUERIES["task_run_journal_end"]
_FOLD_JOURNAL = QUERIES["fold_task_run_journal"]
_CLEAR_JOURNAL = QUERIES["clear_task_run_journal"]


def fold_journal(conn: sqlite3.Connection) -> None:
    """Move every journaled task run into ``task_runs``; call inside a write transaction."""
    end = conn.execute(_JOURNAL_END).fetchone()[0]
    if end is None:
        return  # another process folded it first
    conn.execute(_FOLD_JOURNAL, (end,))
    conn.execute(_CLEAR_JOURNAL, (end,))
