"""Identifiers and error descriptions the engine writes into records."""

from __future__ import annotations

import itertools
import os
import time
import traceback
from typing import Any

from legato.records import ErrorInfo


def new_id() -> str:
    return os.urandom(16).hex()


_process_tag = os.urandom(4).hex()
_counter = itertools.count()


def _new_process_tag() -> None:
    global _process_tag
    _process_tag = os.urandom(4).hex()


os.register_at_fork(after_in_child=_new_process_tag)


def new_task_run_id() -> str:
    """A 32-hex id that sorts by creation time, so the store's id index grows at its
    right edge instead of touching a random page per task run. Unique by time, a
    random tag per process and a counter; no system call per id."""
    return f"{time.time_ns():016x}{_process_tag}{next(_counter) & 0xFFFFFFFF:08x}"


# The same ids wherever creation order matters (automation firings run their
# actions in id order: the order their events arrived).
new_sortable_id = new_task_run_id


def error_info(exc: BaseException) -> ErrorInfo:
    return ErrorInfo(
        type=type(exc).__name__,
        message=str(exc),
        traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    )


def short_repr(value: Any, limit: int = 200) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
