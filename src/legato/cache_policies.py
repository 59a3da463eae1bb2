"""Cache policies: how a task call's cache key is computed, named as in Prefect 3.

``@task(cache_policy=INPUTS)`` reuses a stored result whenever the task is
called again with equal inputs; ``TASK_SOURCE`` keys on the function's
source, ``FLOW_PARAMETERS`` on the parameters of the flow run, ``RUN_ID`` on
the flow run's id, and ``NO_CACHE`` never caches. Policies combine:
``INPUTS + TASK_SOURCE`` hashes both keys together (a part with no key, say
INPUTS of a task called without arguments, is left out; with no key at all
nothing is cached), and ``INPUTS - "debug"`` leaves the input ``debug`` out.
``DEFAULT`` is ``INPUTS + TASK_SOURCE + RUN_ID``: a second call with equal
inputs in the same flow run returns the first one's result.

A key is a hash of canonical forms (JSON with sorted keys where the values
allow, pickle otherwise), so equal inputs give equal keys in every process.
Keys are global, as in Prefect: two tasks with the same policy and equal
inputs share entries unless the policy includes ``TASK_SOURCE``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import TYPE_CHECKING, Any
from uuid import UUID

from legato.errors import ConfigurationError, TaskCallError

if TYPE_CHECKING:
    from legato.engine.context import RunContext, TaskRunContext

CacheKeyFn = Callable[["RunContext", dict[str, Any]], "str | None"]


class CachePolicy:
    """How to compute a task call's cache key; None means "do not cache this call"."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        """The key for a call of ``task_ctx.task`` with ``inputs`` (its arguments by
        parameter name) in a flow run with ``flow_parameters``."""
        raise NotImplementedError(f"{type(self).__name__} must define compute_key")

    @classmethod
    def from_cache_key_fn(cls, cache_key_fn: CacheKeyFn) -> CachePolicy:
        """A policy that asks ``cache_key_fn(run_context, inputs)`` for the key (the
        function `@task(cache_key_fn=...)` takes)."""
        if not callable(cache_key_fn):
            raise ConfigurationError(
                f"from_cache_key_fn needs a function (context, inputs) -> str | None, "
                f"got {type(cache_key_fn).__name__}"
            )
        return CacheKeyFnPolicy(cache_key_fn)

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(other, NoCache):
            return self
        return CompoundCachePolicy([self, other])

    def __sub__(self, name: str) -> CachePolicy:
        """Leave the input ``name`` out of the key; a policy that does not look at
        inputs is unchanged."""
        _check_input_name(name)
        return self

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return type(self).__name__.upper()


class Inputs(CachePolicy):
    """Keys on the call's arguments, except those named in ``exclude``."""

    def __init__(self, exclude: Iterable[str] = ()) -> None:
        self.exclude: tuple[str, ...] = tuple(sorted(set(exclude)))

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        kept = {k: v for k, v in inputs.items() if k not in self.exclude}
        if not kept:
            return None
        try:
            return stable_hash(kept)
        except TypeError:
            pass
        for name, value in kept.items():  # name the argument that cannot be hashed
            try:
                stable_hash(value)
            except TypeError:
                raise TaskCallError(
                    f"the cache key of task '{task_ctx.task.name}' needs its input "
                    f"'{name}', a {type(value).__name__} that cannot be hashed; leave it out "
                    f"with cache_policy=... - '{name}', or pass cache_policy=NO_CACHE"
                ) from None
        raise TaskCallError(  # each value hashes alone but not together: unlikely
            f"the inputs of task '{task_ctx.task.name}' cannot be hashed for its cache key; "
            f"pass cache_policy=NO_CACHE"
        )

    def __sub__(self, name: str) -> CachePolicy:
        _check_input_name(name)
        return Inputs((*self.exclude, name))

    def __repr__(self) -> str:
        return "INPUTS" + "".join(f" - {name!r}" for name in self.exclude)


class TaskSource(CachePolicy):
    """Keys on the task function's source: editing the function starts a fresh cache."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return str(task_ctx.task.code_hash)

    def __repr__(self) -> str:
        return "TASK_SOURCE"


class FlowParameters(CachePolicy):
    """Keys on the parameters of the flow run (no key when it has none)."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if not flow_parameters:
            return None
        try:
            return stable_hash(flow_parameters)
        except TypeError:
            raise TaskCallError(
                f"the cache key of task '{task_ctx.task.name}' needs the flow run's "
                f"parameters, which cannot be hashed; use another cache_policy"
            ) from None

    def __repr__(self) -> str:
        return "FLOW_PARAMETERS"


class RunId(CachePolicy):
    """Keys on the id of the flow run the call belongs to: entries serve that run only."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return str(task_ctx.flow_ctx.run.id)

    def __repr__(self) -> str:
        return "RUN_ID"


class NoCache(CachePolicy):
    """Never a key: the task always runs. Adding it to another policy changes nothing."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return None

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        return other

    def __repr__(self) -> str:
        return "NO_CACHE"


class CacheKeyFnPolicy(CachePolicy):
    """Asks a function ``(run_context, inputs) -> str | None`` for the key."""

    def __init__(self, cache_key_fn: CacheKeyFn) -> None:
        self.cache_key_fn = cache_key_fn

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        from legato.engine.context import get_run_context

        try:
            key = self.cache_key_fn(get_run_context(), inputs)
        except Exception as exc:
            raise TaskCallError(
                f"cache_key_fn of task '{task_ctx.task.name}' raised {type(exc).__name__}: {exc}"
            ) from exc
        return None if key is None else str(key)

    def __repr__(self) -> str:
        name = getattr(self.cache_key_fn, "__qualname__", repr(self.cache_key_fn))
        return f"CachePolicy.from_cache_key_fn({name})"


class CompoundCachePolicy(CachePolicy):
    """Several policies whose keys are hashed together; parts without a key are left
    out, and with no key from any part the call is not cached."""

    def __init__(self, policies: Iterable[CachePolicy]) -> None:
        flat: list[CachePolicy] = []
        excluded: list[str] = []
        has_inputs = False
        for policy in policies:
            for part in policy.policies if isinstance(policy, CompoundCachePolicy) else [policy]:
                if isinstance(part, Inputs):  # one INPUTS part, with every exclusion
                    has_inputs = True
                    excluded.extend(part.exclude)
                elif not isinstance(part, NoCache) and part not in flat:
                    flat.append(part)
        if has_inputs:
            flat.append(Inputs(excluded))
        self.policies: tuple[CachePolicy, ...] = tuple(flat)

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        keys = []
        for policy in self.policies:
            key = policy.compute_key(task_ctx, inputs, flow_parameters, **kwargs)
            if key is not None:
                keys.append(key)
        if not keys:
            return None
        return stable_hash(keys)

    def __sub__(self, name: str) -> CachePolicy:
        _check_input_name(name)
        if not any(isinstance(p, Inputs) for p in self.policies):
            return self
        return CompoundCachePolicy([*self.policies, Inputs([name])])

    def __repr__(self) -> str:
        return " + ".join(repr(p) for p in self.policies)


def _check_input_name(name: object) -> None:
    if not isinstance(name, str):
        raise TypeError(
            f"only an input's name (a str) can be subtracted from a cache policy, "
            f"not {type(name).__name__}"
        )


def stable_hash(value: Any) -> str:
    """A sha256 of ``value``'s canonical form, equal in every process for equal values;
    TypeError when it has none."""
    try:
        payload = json.dumps(value, sort_keys=True, default=_canonical).encode()
    except (TypeError, ValueError):
        try:
            payload = b"pickle\0" + pickle.dumps(value, protocol=4)
        except Exception as exc:  # pickling raises many kinds for unpicklable values
            raise TypeError(f"{type(value).__name__} cannot be hashed: {exc}") from exc
    return hashlib.sha256(payload).hexdigest()


def _canonical(value: Any) -> Any:
    """JSON stand-ins for common values that JSON lacks, tagged with their type."""
    if isinstance(value, (set, frozenset)):
        items = sorted(json.dumps(v, sort_keys=True, default=_canonical) for v in value)
        return {"__set__": items}
    if isinstance(value, Enum):
        return {
            "__enum__": f"{type(value).__module__}.{type(value).__qualname__}",
            "value": value.value,
        }
    if isinstance(value, (datetime, date, time, timedelta, Decimal, UUID, PurePath)):
        return {"__" + type(value).__name__: repr(value)}
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"__dataclass__": f"{type(value).__module__}.{type(value).__qualname__}", **fields}
    dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(dump):
        return {"__model__": f"{type(value).__module__}.{type(value).__qualname__}", **dump()}
    raise TypeError(type(value).__name__)


INPUTS: CachePolicy = Inputs()
TASK_SOURCE: CachePolicy = TaskSource()
FLOW_PARAMETERS: CachePolicy = FlowParameters()
RUN_ID: CachePolicy = RunId()
NO_CACHE: CachePolicy = NoCache()
NONE: CachePolicy = NO_CACHE
DEFAULT: CachePolicy = INPUTS + TASK_SOURCE + RUN_ID

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NONE",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "FlowParameters",
    "Inputs",
    "NoCache",
    "RunId",
    "TaskSource",
]
