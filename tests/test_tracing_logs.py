"""Stored log lines carry the trace and span ids of the span they were written in.

On both backends: the store keeps them (with a task run's record, with the run's
end, and through append_logs), the API and ``legato logs --json`` show them, the
run page puts them in a title; with traces off they stay empty.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import legato
from legato import flow, task, tracing
from legato.client import Client
from legato.records import LogRecord, utcnow
from legato.server import create_app
from legato.store.base import Store

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    monkeypatch.setenv("LEGATO_OTEL", "1")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.configure(provider)
    yield exporter
    tracing.configure(None)


@task
def shout(word: str) -> str:
    legato.get_run_logger().info("task says %s", word)
    return word.upper()


@flow
def talker(word: str) -> str:
    legato.get_run_logger().info("flow starts")
    loud = shout(word)
    legato.get_run_logger().info("flow ends")
    return loud


def _by_message(store: Store, run_id: str) -> dict[str, LogRecord]:
    return {line.message: line for line in store.read_logs(run_id)}


def test_log_lines_are_stored_with_the_ids_of_their_span(
    spans: InMemorySpanExporter, default_store: Store
) -> None:
    state = talker("hi", return_state=True)
    run_id = state.run_id or ""
    found = spans.get_finished_spans()
    (task_span,) = [s for s in found if s.name == "task shout[0]"]
    (attempt,) = [s for s in found if s.name == "attempt 1"]
    trace_id = f"{attempt.context.trace_id:032x}"
    lines = _by_message(default_store, run_id)
    # The task's line (stored with its record) carries the task span; the flow's
    # lines (stored with the next record and with the run's end) the attempt span.
    assert lines["task says hi"].span_id == f"{task_span.context.span_id:016x}"
    assert lines["flow starts"].span_id == f"{attempt.context.span_id:016x}"
    assert lines["flow ends"].span_id == f"{attempt.context.span_id:016x}"
    assert {line.trace_id for line in lines.values()} == {trace_id}

    # append_logs (the monitor's flush, the worker's lines) keeps them too.
    default_store.append_logs(
        [
            LogRecord(
                flow_run_id=run_id,
                timestamp=utcnow(),
                level=20,
                message="appended",
                trace_id=trace_id,
                span_id="00000000000000ab",
            )
        ]
    )
    assert _by_message(default_store, run_id)["appended"].span_id == "00000000000000ab"

    with TestClient(create_app(Client())) as http:
        shown = http.get(f"/api/runs/{run_id}/logs").json()["logs"]
        page = http.get(f"/runs/{run_id}").text
    by_message = {line["message"]: line for line in shown}
    assert by_message["task says hi"]["trace_id"] == trace_id
    assert by_message["task says hi"]["span_id"] == f"{task_span.context.span_id:016x}"
    assert f'title="trace {trace_id} span {task_span.context.span_id:016x}"' in page

    printed = subprocess.run(
        [sys.executable, "-m", "legato", "logs", run_id, "--json"],
        env=dict(os.environ),  # LEGATO_HOME / LEGATO_DATABASE_URL of this test
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    as_json = {d["message"]: d for d in map(json.loads, printed.stdout.splitlines())}
    assert as_json["flow starts"]["span_id"] == f"{attempt.context.span_id:016x}"
    assert as_json["flow starts"]["trace_id"] == trace_id


def test_with_traces_off_log_lines_have_no_ids(
    default_store: Store, legato_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEGATO_OTEL", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    tracing.configure(None)
    state = talker("lo", return_state=True)
    lines = _by_message(default_store, state.run_id or "")
    assert set(lines) == {"flow starts", "task says lo", "flow ends"}
    assert all(line.trace_id is None and line.span_id is None for line in lines.values())
    with TestClient(create_app(Client())) as http:
        page = http.get(f"/runs/{state.run_id}").text
    assert 'title="trace' not in page and "flow starts" in page
