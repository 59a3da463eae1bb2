"""`crash_matrix`: crash a flow at every task boundary in turn, resume it, compare.

The flow first runs uncrashed while its final task records are traced: those are
its boundaries. Then for each boundary, before and after the record's commit, it
runs again, crashes there (`crash_at`, in process), is resumed under the same run
id, and must end completed with the uncrashed result, with no side effect
recorded more often than once (or than in the uncrashed run).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from legato.engine import faults as _faults
from legato.engine.faults import FaultPlan
from legato.errors import ConfigurationError, CrashMatrixFailed
from legato.states import StateType
from legato.testing.runs import RunResult, resume, run_flow

if TYPE_CHECKING:
    from legato.flows import Flow

__all__ = ["Boundary", "CrashMatrixReport", "Duplicate", "Mismatch", "crash_matrix"]

EffectCounts = Callable[[], Mapping[Any, int]]


@dataclass(frozen=True)
class Boundary:
    """A crash point: just before or just after the final record of ``flow:call_key``."""

    flow: str
    call_key: str
    when: Literal["before_commit", "after_commit"]

    @property
    def key(self) -> str:
        return f"{self.flow}:{self.call_key}"

    def __str__(self) -> str:
        return f"{self.when.replace('_', ' ')} of {self.key}"


@dataclass(frozen=True)
class Duplicate:
    """A side effect that ran ``count`` times in the cell crashed at ``boundary``."""

    boundary: Boundary
    effect: Hashable
    count: int

    def __str__(self) -> str:
        return f"crashed {self.boundary}: side effect {self.effect!r} ran {self.count} times"


@dataclass(frozen=True)
class Mismatch:
    """The resumed run ended ``state`` with ``result`` instead of the uncrashed result."""

    boundary: Boundary
    state: StateType
    result: Any
    message: str | None

    def __str__(self) -> str:
        if self.state is not StateType.COMPLETED:
            return f"crashed {self.boundary}: the resumed run ended {self.state.value}" + (
                f" ({self.message})" if self.message else ""
            )
        return f"crashed {self.boundary}: the resumed run returned {self.result!r}"


@dataclass(frozen=True)
class CrashMatrixReport:
    """What `crash_matrix` found. ``missed``: boundaries where the crash did not
    happen (the run took another path than the uncrashed one)."""

    flow: str
    result: Any
    boundaries: tuple[Boundary, ...]
    duplicates: tuple[Duplicate, ...]
    mismatches: tuple[Mismatch, ...]
    missed: tuple[Boundary, ...]

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.mismatches or self.missed)

    def describe(self) -> str:
        lines = [
            f"crash matrix of flow '{self.flow}': {len(self.boundaries)} crash points, "
            + ("all resumed to the uncrashed result" if self.ok else "problems found:")
        ]
        if self.mismatches:
            lines.append(f"  expected result: {self.result!r}")
        lines += [f"  {m}" for m in self.mismatches]
        lines += [f"  {d}" for d in self.duplicates]
        lines += [f"  crash {b}: never reached (the run took another path)" for b in self.missed]
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise `CrashMatrixFailed` (an AssertionError) listing every problem."""
        if not self.ok:
            raise CrashMatrixFailed(
                self.describe() + "\nmake each side effect idempotent (guard it with the "
                "call's idempotency key) and the flow deterministic, then run it again"
            )


def crash_matrix(
    flow: Flow[Any, Any],
    params: Mapping[str, Any] | None = None,
    effects: EffectCounts | None = None,
) -> CrashMatrixReport:
    """Crash ``flow`` (called with ``params``) at every task boundary in turn, resume
    it, and report what differed from an uncrashed run.

    ``effects`` returns how many times each side effect has happened so far (keys
    of your choosing); by default `legato.testing.effects.counts`. Runs in the
    current store (the ``legato_store`` fixture in tests).
    """
    from legato.testing import effects as _effects

    count: EffectCounts = effects if effects is not None else _effects.counts
    args = dict(params or {})
    folder = Path(tempfile.mkdtemp(prefix="legato-crash-matrix-"))
    try:
        trace = folder / "trace.jsonl"
        before = Counter(count())
        with _faults.inject(FaultPlan(trace=str(trace))):
            base = run_flow(flow, **args)
        if base.state.type is not StateType.COMPLETED:
            raise ConfigurationError(
                f"crash_matrix: the uncrashed run {base.run_id} of flow '{flow.name}' ended "
                f"{base.state.type.value} ({base.state.message}); it needs a flow that completes"
            )
        baseline = Counter(count()) - before
        boundaries = _boundaries(trace)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    duplicates: list[Duplicate] = []
    mismatches: list[Mismatch] = []
    missed: list[Boundary] = []
    for boundary in boundaries:
        before = Counter(count())
        outcome = _cell(flow, args, boundary)
        if outcome is None:
            missed.append(boundary)
            continue
        for effect, n in (Counter(count()) - before).items():
            if n > max(1, baseline.get(effect, 0)):
                duplicates.append(Duplicate(boundary, effect, n))
        if outcome.state.type is not StateType.COMPLETED or outcome.result != base.result:
            mismatches.append(
                Mismatch(boundary, outcome.state.type, outcome.result, outcome.state.message)
            )
    return CrashMatrixReport(
        flow.name,
        base.result,
        tuple(boundaries),
        tuple(duplicates),
        tuple(mismatches),
        tuple(missed),
    )


def _boundaries(trace: Path) -> list[Boundary]:
    seen: dict[tuple[str, str], None] = {}
    if trace.exists():
        for line in trace.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            seen.setdefault((item["flow"], item["call_key"]), None)
    return [
        Boundary(flow, key, when)
        for flow, key in seen
        for when in ("before_commit", "after_commit")
    ]


def _cell(flow: Flow[Any, Any], args: dict[str, Any], boundary: Boundary) -> RunResult | None:
    """Run crashed at ``boundary`` and resumed; None when the crash never happened."""
    keys = frozenset((boundary.key,))
    plan = FaultPlan(in_process=True)
    if boundary.when == "before_commit":
        plan = replace(plan, kill_before=keys)
    else:
        plan = replace(plan, kill_after=keys)
    # The resume stays inside the block: the crash happens once, and calls still
    # running for the crashed attempt keep failing as a dead process's would.
    with _faults.inject(plan):
        crashed = run_flow(flow, **args)
        injector = _faults.ACTIVE
        if injector is None or not injector.fired:
            return None
        if crashed.state.type is StateType.COMPLETED:
            return crashed  # crashed in a subflow whose parent carried on: compare as is
        return resume(crashed, flow)
