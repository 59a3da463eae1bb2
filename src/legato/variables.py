"""Variables: named JSON values kept in the store, shared by flows, tasks and people.

    from legato.variables import Variable

    Variable.set("crew", ["Zaphod", "Arthur"])
    Variable.get("crew", default=[])
    Variable.set("crew", ["Trillian"], overwrite=True)
    Variable.unset("crew")

The same calls as Prefect 3's ``prefect.variables.Variable``, inside or outside a
flow run. Called where an event loop is running (in ``async def`` code) they
return awaitables, as Prefect's do: ``await Variable.get("crew")``; ``aget``,
``aset`` and ``aunset`` always do. ``_sync=True`` forces the plain call.
Inside a flow run the run's store is used, elsewhere the configured one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from legato.engine import variables as _variables
from legato.store.base import Store

__all__ = ["Variable"]

T = TypeVar("T")


def _store() -> Store:
    from legato.engine.context import FLOW_CONTEXT

    flow_ctx = FLOW_CONTEXT.get()
    if flow_ctx is not None:
        return flow_ctx.store
    from legato.store import get_default_store

    return get_default_store()


def _in_async_code(sync: bool | None) -> bool:
    if sync is not None:
        return not sync
    return asyncio._get_running_loop() is not None


async def _off_loop(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


@dataclass(frozen=True)
class Variable:
    """A variable as `Variable.set` stored it: its name, JSON value and tags."""

    name: str
    value: Any
    tags: tuple[str, ...] = ()

    # -- sync (or awaitable in async code, like Prefect's) -------------------------

    @classmethod
    def get(cls, name: str, default: Any = None, *, _sync: bool | None = None) -> Any:
        """The value of variable ``name``, or ``default`` when there is none."""
        if _in_async_code(_sync):
            return cls.aget(name, default)
        return cls._get(_store(), name, default)

    @classmethod
    def set(
        cls,
        name: str,
        value: Any,
        tags: Sequence[str] | None = None,
        overwrite: bool = False,
        *,
        _sync: bool | None = None,
    ) -> Any:
        """Store ``value`` (JSON: str, numbers, bools, None, lists, dicts) as ``name``.

        A name already taken raises `VariableExistsError` unless ``overwrite``.
        Returns the `Variable` stored."""
        if _in_async_code(_sync):
            return cls.aset(name, value, tags=tags, overwrite=overwrite)
        return cls._set(_store(), name, value, tags, overwrite)

    @classmethod
    def unset(cls, name: str, *, _sync: bool | None = None) -> Any:
        """Delete variable ``name``; True when it existed, False when there was none."""
        if _in_async_code(_sync):
            return cls.aunset(name)
        return _variables.delete_variable(_store(), name)

    # -- async ---------------------------------------------------------------------

    @classmethod
    def aget(cls, name: str, default: Any = None) -> Awaitable[Any]:
        store = _store()
        return _off_loop(lambda: cls._get(store, name, default))

    @classmethod
    def aset(
        cls,
        name: str,
        value: Any,
        tags: Sequence[str] | None = None,
        overwrite: bool = False,
    ) -> Awaitable[Variable]:
        store = _store()
        return _off_loop(lambda: cls._set(store, name, value, tags, overwrite))

    @classmethod
    def aunset(cls, name: str) -> Awaitable[bool]:
        store = _store()
        return _off_loop(lambda: _variables.delete_variable(store, name))

    # -- shared ----------------------------------------------------------------------

    @staticmethod
    def _get(store: Store, name: str, default: Any) -> Any:
        stored = _variables.get_variable(store, name)
        return default if stored is None else _variables.decode_value(stored)

    @classmethod
    def _set(
        cls, store: Store, name: str, value: Any, tags: Sequence[str] | None, overwrite: bool
    ) -> Variable:
        stored_tags = _variables.set_variable(store, name, value, tags=tags, overwrite=overwrite)
        return cls(name=name, value=value, tags=stored_tags)
