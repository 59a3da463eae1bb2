"""The ``tags`` context manager: ``with tags("a", "b"):`` tags the runs created inside.

Flow runs and task runs created inside the block carry these tags as well as
their own (nested blocks add up, as in Prefect). Global limits count a task's
tags from the block too. Only runs created inside the block are tagged: a run
resumed later keeps the tags it was recorded with.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from legato.errors import ConfigurationError

__all__ = ["tags"]

# The tags of the enclosing `tags` blocks, in the order they were given (no repeats).
TAGS: ContextVar[tuple[str, ...]] = ContextVar("legato_tags", default=())


@contextmanager
def tags(*names: str) -> Iterator[set[str]]:
    """Add ``names`` to every flow run and task run created inside the block.

    Yields the set of all the tags in effect (the enclosing blocks' and these).
    """
    for name in names:
        if not isinstance(name, str):
            raise ConfigurationError(
                f"tags() takes tag names as strings, got {type(name).__name__} {name!r}; "
                f'write with tags("a", "b"):'
            )
    current = with_tags(TAGS.get(), names)
    token = TAGS.set(current)
    try:
        yield set(current)
    finally:
        TAGS.reset(token)


def with_tags(own: tuple[str, ...], extra: tuple[str, ...]) -> tuple[str, ...]:
    """``own`` followed by the tags of ``extra`` it lacks."""
    if not extra:
        return own
    return tuple(dict.fromkeys((*own, *extra)))


def current_tags() -> tuple[str, ...]:
    """The tags of the enclosing `tags` blocks (empty outside any)."""
    return TAGS.get()
