"""Traces (`legato.tracing`): spans from real runs, caught by the SDK's in-memory exporter.

The crash test kills real processes (``LEGATO_FAULTS=kill-after=...``); those
processes export to a JSON-lines file (an exporter defined in their script), the
test process to the in-memory exporter; together they must form one trace.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import legato
from legato import flow, task, tracing
from legato.engine.calls import resume_run
from legato.states import StateType
from legato.store import get_default_store
from legato.tracing._otel import run_ids

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    monkeypatch.setenv("LEGATO_OTEL", "1")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.configure(provider)
    yield exporter
    tracing.configure(None)  # read the settings again: off once LEGATO_OTEL is gone


def named(found: Sequence[Any], name: str) -> list[Any]:
    return [s for s in found if s.name == name]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


@task
def double(x: int) -> int:
    legato.get_run_logger().info("doubling %s", x)
    return 2 * x


@flow
def doubler(x: int) -> int:
    return double(x) + double(x + 1)


@flow
def parent_flow(x: int) -> int:
    return doubler(double(x))


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_run_is_one_trace_of_run_attempt_and_task_spans(spans: InMemorySpanExporter) -> None:
    keep = Keep()
    logging.getLogger("legato.runs").addHandler(keep)
    try:
        assert doubler(3) == 14
    finally:
        logging.getLogger("legato.runs").removeHandler(keep)
    found = spans.get_finished_spans()
    (run_span,) = named(found, "flow doubler")
    (attempt,) = named(found, "attempt 1")
    tasks = named(found, "task double[0]") + named(found, "task double[1]")
    assert len(tasks) == 2
    assert {s.context.trace_id for s in found} == {run_span.context.trace_id}
    assert run_span.parent is None
    assert attempt.parent is not None and attempt.parent.span_id == run_span.context.span_id
    assert all(t.parent is not None and t.parent.span_id == attempt.context.span_id for t in tasks)
    run = get_default_store().get_flow_run(attrs(run_span)["legato.flow_run.id"])
    assert run is not None and run.trace_context is not None  # stored with the run
    assert run_ids(run)[:2] == (run_span.context.trace_id, run_span.context.span_id)
    assert attrs(run_span)["legato.flow.name"] == "doubler"
    assert attrs(run_span)["legato.state"] == "completed"
    assert attrs(attempt)["legato.attempt"] == 1
    assert attrs(tasks[0])["legato.task.call_key"] == "double[0]"
    assert attrs(tasks[0])["legato.state"] == "completed"
    assert "legato.parameters" not in attrs(run_span)  # not unless asked
    # Log lines carry the ids of the task span they were written in.
    lines = [r for r in keep.records if r.getMessage() == "doubling 3"]
    assert lines and lines[0].otelSpanID == f"{tasks[0].context.span_id:016x}"
    assert lines[0].otelTraceID == f"{run_span.context.trace_id:032x}"


def test_parameters_are_recorded_only_when_asked(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGATO_OTEL_RECORD_PARAMS", "1")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing.configure(provider)
    doubler(5)
    (run_span,) = named(spans.get_finished_spans(), "flow doubler")
    assert json.loads(str(attrs(run_span)["legato.parameters"])) == {"x": 5}


def test_a_subflow_continues_the_parents_trace(spans: InMemorySpanExporter) -> None:
    assert parent_flow(1) == 10
    found = spans.get_finished_spans()
    (outer,) = named(found, "flow parent_flow")
    (inner,) = named(found, "flow doubler")
    assert {s.context.trace_id for s in found} == {outer.context.trace_id}
    outer_attempt = next(
        s for s in named(found, "attempt 1") if attrs(s)["legato.flow.name"] == "parent_flow"
    )
    # Called from the flow body: the child run's span hangs under the parent's attempt.
    assert inner.parent is not None and inner.parent.span_id == outer_attempt.context.span_id


@task
def trigger_report() -> str:
    from legato.client import Client

    return Client().trigger("report-dep").id


@flow
def report(n: int = 1) -> int:
    return n


@flow
def caller() -> str:
    return trigger_report()


def test_a_deployment_run_triggered_by_a_flow_stores_the_callers_trace(
    spans: InMemorySpanExporter,
) -> None:
    report.deploy("report-dep")
    run_id = caller()
    found = spans.get_finished_spans()
    (task_span,) = named(found, "task trigger_report[0]")
    run = get_default_store().get_flow_run(run_id)
    assert run is not None and run.state is StateType.SCHEDULED
    trace_id, _, parent = run_ids(run)
    assert trace_id == task_span.context.trace_id
    assert parent == task_span.context.span_id


@flow
def fails_then_resumes(fail: list[bool]) -> int:
    first = double(1)
    if fail:
        raise ValueError("boom")
    return first + double(2)


def test_a_resume_replays_calls_as_zero_length_spans_in_the_same_trace(
    spans: InMemorySpanExporter,
) -> None:
    state = fails_then_resumes([True], return_state=True)
    assert state.type is StateType.FAILED
    store = get_default_store()
    run = store.get_flow_run(state.run_id or "")
    assert run is not None
    # Resumed with code that no longer fails (the same flow name, as after a fix).
    resume_run(run.id, flow=doubler_like)
    found = spans.get_finished_spans()
    assert {s.context.trace_id for s in found} == {run_ids(run)[0]}
    replayed = [s for s in named(found, "task double[0]") if attrs(s).get("legato.replayed")]
    assert len(replayed) == 1 and replayed[0].start_time == replayed[0].end_time
    assert [attrs(s)["legato.state"] for s in found if s.name.startswith("attempt")] == [
        "failed",
        "completed",
    ]
    assert len(named(found, "flow fails_then_resumes")) == 1


@flow(name="fails_then_resumes")
def doubler_like(fail: list[bool]) -> int:
    return double(1) + double(2)


CRASHING = textwrap.dedent(
    """
    import json
    import sys

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    from legato import flow, task, tracing
    from legato.engine.calls import resume_run


    class FileExporter(SpanExporter):
        def export(self, spans):
            with open(sys.argv[2], "a") as out:
                for s in spans:
                    parent = s.parent.span_id if s.parent is not None else None
                    line = {"name": s.name, "trace": s.context.trace_id,
                            "span": s.context.span_id, "parent": parent,
                            "attributes": dict(s.attributes)}
                    out.write(json.dumps(line) + "\\n")
            return SpanExportResult.SUCCESS


    @task
    def step(i):
        return i


    @flow
    def pipeline():
        return sum(step(i) for i in range(4))


    if __name__ == "__main__":
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
        tracing.configure(provider)
        if sys.argv[1] == "run":
            pipeline()
        else:
            resume_run(sys.argv[1], flow=pipeline)
    """
)


def test_a_run_crashed_and_resumed_twice_is_one_trace_with_three_attempts(
    spans: InMemorySpanExporter, tmp_path: Path, legato_home: Path
) -> None:
    script = tmp_path / "crashing.py"
    script.write_text(CRASHING)
    exported = tmp_path / "spans.jsonl"
    env = {
        **dict(__import__("os").environ),
        "LEGATO_HOME": str(legato_home),
        "LEGATO_OTEL": "1",
        "LEGATO_LOG_TO_CONSOLE": "0",
    }

    def crash(arg: str, key: str) -> None:
        done = subprocess.run(
            [sys.executable, str(script), arg, str(exported)],
            env={**env, "LEGATO_FAULTS": f"kill-after={key}"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == -9, done.stderr  # SIGKILLed after that record

    crash("run", "step[1]")
    (run,) = get_default_store().list_flow_runs(limit=5)
    crash(run.id, "step[2]")
    state = resume_run(run.id, flow=_pipeline_here())
    assert state.type is StateType.COMPLETED

    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    found = [
        {
            "name": s.name,
            "trace": s.context.trace_id,
            "span": s.context.span_id,
            "parent": s.parent.span_id if s.parent is not None else None,
            "attributes": attrs(s),
        }
        for s in spans.get_finished_spans()
    ]
    every = lines + found
    assert {s["trace"] for s in every} == {run_ids(run)[0]}
    attempts = sorted(
        (s for s in every if s["name"].startswith("attempt ")), key=lambda s: s["name"]
    )
    assert [s["name"] for s in attempts] == ["attempt 1", "attempt 2", "attempt 3"]
    assert [s["attributes"]["legato.state"] for s in attempts] == [
        "crashed",
        "crashed",
        "completed",
    ]
    (run_span,) = [s for s in every if s["name"] == "flow pipeline"]
    assert all(a["parent"] == run_span["span"] for a in attempts)
    # Every task span hangs under an attempt span that exists, including the spans
    # a killed process exported before its attempt's span was written by the next one.
    attempt_ids = {a["span"] for a in attempts}
    task_spans = [s for s in every if s["name"].startswith("task ")]
    assert task_spans and all(s["parent"] in attempt_ids for s in task_spans)
    replayed = [
        s["attributes"]["legato.task.call_key"]
        for s in task_spans
        if s["attributes"].get("legato.replayed")
    ]
    assert sorted(replayed) == ["step[0]", "step[0]", "step[1]", "step[1]", "step[2]"]


def _pipeline_here() -> Any:
    @task(name="step")
    def step(i: int) -> int:
        return i

    @flow(name="pipeline")
    def pipeline() -> int:
        return sum(step(i) for i in range(4))

    return pipeline


def test_import_legato_does_not_import_opentelemetry() -> None:
    code = "import sys, legato; print(any(m.startswith('opentelemetry') for m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"


def test_missing_extra_is_one_clear_line(tmp_path: Path, legato_home: Path) -> None:
    # A finder that hides opentelemetry, as if the extra were not installed.
    script = textwrap.dedent(
        """
        import sys

        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "opentelemetry":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, Hide())
        from legato import flow

        @flow
        def f():
            return 1

        try:
            f()
        except Exception as exc:
            print(type(exc).__name__, exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**dict(__import__("os").environ), "LEGATO_HOME": str(legato_home), "LEGATO_OTEL": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = done.stdout.strip()
    assert out.startswith("MissingExtraError ") and "\n" not in out
    assert "pip install 'legato[otel]'" in out


@flow
def taken_over() -> int:
    return double(1) + double(2)


def test_a_worker_takeover_continues_the_trace(
    spans: InMemorySpanExporter, legato_home: Path
) -> None:
    from datetime import timedelta

    from legato.client import Client
    from legato.engine.calls import execute_claimed_run
    from legato.engine.ids import new_id
    from legato.engine.liveness import current_owner

    client = Client()
    taken_over.deploy("taken-over")
    run = client.trigger("taken-over")
    store = client.store
    first = new_id()
    claimed = store.claim_flow_run(
        ["default"], current_owner(first), now=store.clock(), lease_seconds=2
    )
    assert claimed is not None and claimed.id == run.id
    # The first worker's child dies (SIGKILL) after double[0] is recorded.
    done = subprocess.run(
        [sys.executable, "-m", "legato.worker.child", run.id],
        env={
            **dict(__import__("os").environ),
            "LEGATO_HOME": str(legato_home),
            "LEGATO_CLAIM_TOKEN": first,
            "PYTHONPATH": str(Path(__file__).parent),  # the flow's module: test_tracing
            "LEGATO_FAULTS": "kill-after=double[0]",
            "LEGATO_LOG_TO_CONSOLE": "0",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr
    # Another worker claims it once the lease has lapsed, and runs it here.
    second = new_id()
    later = store.clock() + timedelta(seconds=5)
    again = store.claim_flow_run(["default"], current_owner(second), now=later, lease_seconds=2)
    assert again is not None and again.id == run.id
    assert execute_claimed_run(run.id, second).type is StateType.COMPLETED

    found = spans.get_finished_spans()
    stored = store.get_flow_run(run.id)
    assert stored is not None
    assert {s.context.trace_id for s in found} == {run_ids(stored)[0]}
    attempts = sorted(named(found, "attempt 1") + named(found, "attempt 2"), key=lambda s: s.name)
    assert [attrs(s)["legato.state"] for s in attempts] == ["crashed", "completed"]
    assert attrs(attempts[1])["legato.deployment.name"] == "taken-over"
    (run_span,) = named(found, "flow taken_over")
    assert all(
        a.parent is not None and a.parent.span_id == run_span.context.span_id for a in attempts
    )


@pytest.mark.usefixtures("backend")
def test_the_trace_context_is_stored_by_every_kind_of_run_insert(
    spans: InMemorySpanExporter, default_store: Any
) -> None:
    # Plain insert (a flow called here), tagged insert, and the deployment inserts:
    # queued, and once per idempotency key (a schedule slot).
    from legato.client import Client
    from legato.engine.queueing import queue_deployment_run

    doubler.with_options(tags=["t"])(1)
    doubler(2)
    report.deploy("stored-dep")
    queued = Client().trigger("stored-dep")
    deployment = default_store.get_deployment("stored-dep")
    once, created = queue_deployment_run(default_store, deployment, {}, idempotency_key="slot-1")
    assert created
    runs = default_store.list_flow_runs(limit=10)
    assert len(runs) == 4 and {r.id for r in runs} >= {queued.id, once.id}
    assert all(
        re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", r.trace_context or "") for r in runs
    )
    assert len({r.trace_context for r in runs}) == 4  # each run its own trace


@flow
def sleeps_then_pauses() -> int:
    legato.sleep(0.01, key="nap")
    legato.pause_flow_run(key="approve")
    return double(1)


def test_sleeps_and_pauses_are_events_of_the_attempt_span(spans: InMemorySpanExporter) -> None:
    state = sleeps_then_pauses(return_state=True)
    assert state.type is StateType.PAUSED
    resume_run(state.run_id or "")
    found = spans.get_finished_spans()
    first, second = sorted(
        named(found, "attempt 1") + named(found, "attempt 2"), key=lambda s: s.name
    )
    assert [e.name for e in first.events] == ["legato.sleep", "legato.pause"]
    assert dict(first.events[1].attributes or {})["legato.pause.key"] == "approve"
    assert attrs(first)["legato.state"] == "paused"
    assert attrs(second)["legato.state"] == "completed"
    assert len(named(found, "flow sleeps_then_pauses")) == 1
