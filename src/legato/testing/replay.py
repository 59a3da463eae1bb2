"""Replay check: does the current code of a flow still make the calls a recorded run made?

`replay(run_or_export, flow)` loads a recorded run (from the store, from a file
written by `legato export`, or from its parsed JSON) into a throwaway SQLite
store, and resumes it there with the engine's "replay only" hook on
(`legato.engine.replay_only`): the flow body runs, but no task body does.
Every task call is answered from the recording at its call key, and the check
notes where the code diverges:

- ``new-call``: the code makes a call at a key the recording lacks. The replay
  stops there (nothing recorded can answer it; carrying on with a made-up
  value would only report noise), so later keys are not checked.
- ``missing-call``: a recorded key the code never reached.
- ``task-name``: a different task at a recorded key.
- ``arguments``: different arguments at a key (their fingerprints differ).
- ``state`` / ``result``: the run ends in another final state, or with a
  different result, than the recording.
- ``no-result``: a recorded call completed without a stored result
  (``persist_result=False``), so it cannot be answered; the replay stops there.
- ``subflow``: a subflow's task call; the check covers the top-level run only.

A call recorded as failed raises `RecordedTaskFailure` in the flow, as the
original failure did; the flow replays once, without its retries. Code in the
flow body outside tasks runs again, as on any resume. The user's store is only
read, never written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legato.client.export import ExportedTask, RunExport, export_run, parse_export, read_export
from legato.engine import replay_only as _replay_only
from legato.engine.fingerprint import fingerprint
from legato.engine.ids import short_repr
from legato.engine.results import deserialize
from legato.states import State, StateType

if TYPE_CHECKING:
    from legato.engine.context import FlowRunContext
    from legato.engine.task_engine import TaskCall
    from legato.flows import Flow
    from legato.store.base import Store

__all__ = ["Divergence", "RecordedTaskFailure", "ReplayReport", "load_recording", "replay"]

# One replay check at a time per process: the hook is process-wide.
_LOCK = threading.Lock()
_FINAL_STATES = (StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED)


class RecordedTaskFailure(Exception):
    """Raised in the flow where the recording has a failed task call."""


class _ReplayStopped(BaseException):
    """Stops the replayed run where the recording cannot answer a call (private)."""


@dataclass(frozen=True, slots=True)
class Divergence:
    """One place where the current code differs from the recording."""

    kind: str
    call_key: str | None
    message: str


@dataclass(slots=True)
class ReplayReport:
    """What a replay check found: ``ok`` when the code matches the recording."""

    run_id: str
    flow_name: str
    calls: int = 0  # task calls the code made and the recording answered or refused
    divergences: list[Divergence] = field(default_factory=list)
    stopped: str | None = None  # why the replay stopped early, if it did
    final_state: StateType | None = None

    @property
    def ok(self) -> bool:
        return not self.divergences

    def lines(self) -> list[str]:
        """The report as plain text lines."""
        head = f"replay of flow run {self.run_id} (flow '{self.flow_name}'): {self.calls} calls"
        if self.ok:
            return [f"{head}, matches the recording"]
        out = [f"{head}, {len(self.divergences)} divergence(s):"]
        for d in self.divergences:
            out.append(f"  {d.kind:<13} {d.call_key or '-':<24} {d.message}")
        if self.stopped:
            out.append(f"replay stopped early: {self.stopped}")
        return out


class _Replayer:
    """The replay-only hook: answers the run's task calls from the recording."""

    def __init__(self, export: RunExport, store: Store, report: ReplayReport) -> None:
        self.export = export
        self.store = store
        self.report = report
        self.tasks: dict[str, ExportedTask] = {t.record.call_key: t for t in export.tasks}
        self.reached: set[str] = set()
        self.lock = threading.Lock()

    def covers(self, flow_ctx: FlowRunContext) -> bool:
        return flow_ctx.store is self.store

    def _stop(self, kind: str, key: str | None, message: str) -> _ReplayStopped:
        with self.lock:
            self.report.divergences.append(Divergence(kind, key, message))
            self.report.stopped = message
        return _ReplayStopped(message)

    def answer(self, call: TaskCall) -> tuple[bool, Any]:
        key, name = call.call_key, call.task.name
        with self.lock:
            self.report.calls += 1
        if call.flow_ctx.run.id != self.export.run.id:
            raise self._stop(
                "subflow",
                key,
                f"task '{name}' runs in a subflow; the replay check covers the top-level "
                f"run's task calls only",
            )
        with self.lock:
            self.reached.add(key)
        recorded = self.tasks.get(key)
        if recorded is None:
            raise self._stop(
                "new-call", key, f"the code calls task '{name}' here; the recording has no call"
            )
        record = recorded.record
        found: list[Divergence] = []
        if record.task_name != name:
            found.append(
                Divergence(
                    "task-name",
                    key,
                    f"the recording calls task '{record.task_name}' here, the code '{name}'",
                )
            )
        called = call.fingerprint
        if called is None:
            called = fingerprint(call.task.parameter_names, call.args, call.kwargs)
        if record.args_fingerprint is not None and record.args_fingerprint != called:
            found.append(
                Divergence(
                    "arguments",
                    key,
                    f"recorded arguments {record.args_fingerprint}, now {called}",
                )
            )
        with self.lock:
            self.report.divergences.extend(found)
        if record.state is StateType.COMPLETED and not record.rolled_back:
            if recorded.result is None:
                raise self._stop(
                    "no-result",
                    key,
                    f"task '{record.task_name}' completed without a stored result "
                    f"(persist_result=False), so the recording cannot answer it",
                )
            return True, deserialize(recorded.result, f"recorded result of '{name}' ({key})")
        if record.state in (StateType.FAILED, StateType.CANCELLED):
            error = record.error
            detail = f": {error.type}: {error.message}" if error is not None else ""
            raise RecordedTaskFailure(
                f"task '{record.task_name}' ({key}) {record.state.value} in the recording{detail}"
            )
        # Crashed, running or rolled back: the recording ends here.
        with self.lock:
            self.report.stopped = f"the recording ends at {key} ({record.state.value})"
        raise _ReplayStopped(self.report.stopped)

    def finish(self, state: State | None) -> None:
        report = self.report
        if report.stopped is None or not any(
            d.kind in ("new-call", "subflow", "no-result") for d in report.divergences
        ):
            for task in self.export.tasks:
                key = task.record.call_key
                if key not in self.reached:
                    report.divergences.append(
                        Divergence(
                            "missing-call",
                            key,
                            f"the recording calls task '{task.record.task_name}' here; "
                            f"the code never does",
                        )
                    )
        if state is None:
            return
        report.final_state = state.type
        recorded = self.export.run.state
        if recorded not in _FINAL_STATES:
            return
        if state.type is not recorded:
            why = f" ({state.message})" if state.message else ""
            report.divergences.append(
                Divergence(
                    "state",
                    None,
                    f"the recording ends {recorded.value}, the code {state.type.value}{why}",
                )
            )
            return
        if recorded is StateType.COMPLETED and self.export.result is not None:
            before = deserialize(self.export.result, f"recorded result of run {report.run_id}")
            now = state.result(raise_on_failure=False)
            if not _equal(before, now):
                report.divergences.append(
                    Divergence(
                        "result",
                        None,
                        f"recorded result {short_repr(before)}, now {short_repr(now)}",
                    )
                )


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # values whose == is not a truth value (arrays): compare reprs
        return repr(a) == repr(b)


def load_recording(run_or_export: Any, store: Store | None = None) -> RunExport:
    """A recorded run: a `RunExport`, an export's parsed JSON (dict), the path of an
    export file, or a run id (or unambiguous prefix) of ``store`` (default: the
    default store)."""
    if isinstance(run_or_export, RunExport):
        return run_or_export
    if isinstance(run_or_export, dict):
        return read_export(run_or_export)
    if isinstance(run_or_export, Path) or (
        isinstance(run_or_export, str) and os.path.isfile(run_or_export)
    ):
        path = Path(run_or_export)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            from legato.errors import RunExportError

            raise RunExportError(f"cannot read the export {path}: {exc}") from None
        return parse_export(text, f"the export {path}")
    if not isinstance(run_or_export, str):
        raise TypeError(
            f"replay takes a run id, an export file path, or an export dict, not "
            f"{type(run_or_export).__name__}"
        )
    from legato.engine.calls import resolve_run_id
    from legato.store import get_default_store

    store = store or get_default_store()
    data = export_run(store, resolve_run_id(store, run_or_export))
    return read_export(json.loads(json.dumps(data)))


def replay(
    run_or_export: Any, flow: Flow[Any, Any] | str, *, store: Store | None = None
) -> ReplayReport:
    """Replay a recorded run against ``flow`` (a flow, or "module:flow" / "file.py:flow")
    without running any task; see the module doc for what is reported."""
    from legato.engine.calls import resume_run
    from legato.engine.entrypoints import load_flow
    from legato.store.sqlite import SQLiteStore

    export = load_recording(run_or_export, store)
    target = load_flow(flow) if isinstance(flow, str) else flow
    if target.retries:
        # The recording holds each call's last outcome; attempts again would only wait.
        target = target.with_options(retries=0)
    report = ReplayReport(run_id=export.run.id, flow_name=export.run.flow_name)
    with _LOCK, tempfile.TemporaryDirectory(prefix="legato-replay-") as tmp:
        temp = SQLiteStore(Path(tmp) / "replay.db")
        try:
            pending = dataclasses.replace(
                export.run,
                state=StateType.PENDING,
                start_time=None,
                end_time=None,
                state_message=None,
                error=None,
                attempts=0,
                has_result=False,
                parent_run_id=None,
                parent_call_key=None,
                work_queue=None,
                deployment=None,
            )
            temp.create_flow_run(pending, export.parameters_blob)
            replayer = _Replayer(export, temp, report)
            _replay_only.ACTIVE = replayer
            state: State | None
            try:
                state = resume_run(pending.id, flow=target, store=temp)
            except _ReplayStopped:
                state = None
            finally:
                _replay_only.ACTIVE = None
            replayer.finish(state)
        finally:
            temp.close()
    return report
