"""A side-effect recorder for tests: tasks note each side effect they perform,
and tests (and `crash_matrix`) count how often each one happened.

Call ``effects.record("charge")`` right after a task performed a side effect
(``key`` defaults to the call's idempotency key, the same across attempts and
resumes of that call). ``effects.once("charge")`` is the guarded form: it records
and returns True only the first time, as a provider deduplicating on an
idempotency key would. Lines go to a file under ``LEGATO_HOME`` (one JSON object
a line), so they survive a crash and are seen across processes; the
``legato_store`` fixture gives each test its own.

Inside a flow run ended by a simulated crash (`crash_at`) both raise
`SimulatedCrash`, as nothing more would happen in a killed process.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from legato.engine import faults as _faults

__all__ = ["Effect", "clear", "counts", "once", "path", "read", "record"]

_lock = threading.Lock()


@dataclass(frozen=True)
class Effect:
    """One recorded side effect: its name, key, and the call that performed it."""

    name: str
    key: str
    flow_run_id: str | None
    call_key: str | None


def path() -> Path:
    """The file the recorder writes: ``$LEGATO_HOME/testing/effects.jsonl``."""
    from legato.settings import legato_home

    return legato_home() / "testing" / "effects.jsonl"


def _current() -> tuple[str | None, str | None, str | None]:
    from legato.engine.context import FLOW_CONTEXT, get_run_context

    if FLOW_CONTEXT.get() is None:
        return None, None, None  # outside any run
    ctx = get_run_context()
    return ctx.flow_run_id, ctx.call_key or None, ctx.idempotency_key or None


def _key(name: str, key: str | None) -> tuple[str, str | None, str | None]:
    if not isinstance(name, str) or not name:
        raise ValueError(f"effects: the effect name must be a non-empty string, not {name!r}")
    injector = _faults.ACTIVE
    if injector is not None and injector.plan.in_process:
        injector.check_alive()
    run_id, call_key, idem = _current()
    key = key if key is not None else idem
    if key is None:
        raise ValueError(
            f"effects: effect '{name}' recorded outside a task or flow run needs an explicit key"
        )
    return key, run_id, call_key


def _append(effect: Effect) -> None:
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(
        {
            "name": effect.name,
            "key": effect.key,
            "flow_run_id": effect.flow_run_id,
            "call_key": effect.call_key,
        }
    )
    with open(target, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def record(name: str, key: str | None = None) -> Effect:
    """Note that side effect ``name`` (under ``key``) just happened."""
    key, run_id, call_key = _key(name, key)
    effect = Effect(name, key, run_id, call_key)
    with _lock:
        _append(effect)
    return effect


def once(name: str, key: str | None = None) -> bool:
    """Record ``name`` under ``key`` unless it was recorded before; True when it was
    not (perform the side effect then). The check and the record are one step in
    this process."""
    key, run_id, call_key = _key(name, key)
    with _lock:
        if any(e.name == name and e.key == key for e in read()):
            return False
        _append(Effect(name, key, run_id, call_key))
    return True


def read() -> list[Effect]:
    """Every recorded effect, in order."""
    try:
        text = path().read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        if line.strip():
            item = json.loads(line)
            out.append(Effect(item["name"], item["key"], item["flow_run_id"], item["call_key"]))
    return out


def counts() -> Counter[tuple[str, str]]:
    """How many times each (name, key) was recorded."""
    return Counter((e.name, e.key) for e in read())


def clear() -> None:
    """Forget every recorded effect."""
    with _lock:
        path().unlink(missing_ok=True)
