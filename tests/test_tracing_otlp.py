"""Traces exported for real: OTLP/HTTP from `legato run`, a `legato worker`'s forked
child and a crashed-then-resumed run, to a local receiver that decodes each
POST /v1/traces with opentelemetry-proto (nothing else in these processes is set up:
``OTEL_EXPORTER_OTLP_ENDPOINT`` alone turns traces on and points them there).
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from _receiver import Receiver, running_receiver
from _waiting import wait_until
from legato import tracing
from legato.client import Client
from legato.states import StateType
from legato.store import get_default_store, reset_default_store

FLOWS = textwrap.dedent(
    """
    from legato import flow, task


    @task
    def step(i):
        return i


    @flow
    def pipeline(n: int = 4):
        return sum(step(i) for i in range(n))
    """
)


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


def received(receiver: Receiver) -> list[Span]:
    """Every span the receiver was sent, decoded from the OTLP protobuf bodies."""
    found = []
    for request in receiver.at("/v1/traces"):
        body = request.body
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {
                        kv.key: getattr(kv.value, kv.value.WhichOneof("value") or "string_value")
                        for kv in span.attributes
                    }
                    found.append(
                        Span(
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            attributes,
                        )
                    )
    return found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as started:
        yield started


@pytest.fixture
def env(
    receiver: Receiver, legato_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The environment of the legato processes: traces on only through the endpoint,
    exported in batches that only a flush sends (no timer fires during a test)."""
    monkeypatch.delenv("LEGATO_OTEL", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    tracing.configure(None)  # this process: traces off
    yield {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
        "LEGATO_LOG_TO_CONSOLE": "0",
    }
    tracing.configure(None)


@pytest.fixture
def flows_file(tmp_path: Path) -> Path:
    path = tmp_path / "otlp_flows.py"
    path.write_text(FLOWS)
    return path


def legato(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legato", *args],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=120,
    )


def named(spans: list[Span], name: str) -> list[Span]:
    return [s for s in spans if s.name == name]


def test_legato_run_exports_its_spans_over_otlp_http(
    receiver: Receiver, env: dict[str, str], flows_file: Path
) -> None:
    done = legato(env, "run", f"{flows_file}:pipeline")
    assert done.returncode == 0, done.stderr
    spans = received(receiver)  # exported before the process exited
    (run_span,) = named(spans, "flow pipeline")
    (attempt,) = named(spans, "attempt 1")
    tasks = [s for s in spans if s.name.startswith("task step[")]
    assert len(tasks) == 4
    assert {s.trace_id for s in spans} == {run_span.trace_id}
    assert attempt.parent_id == run_span.span_id
    assert all(t.parent_id == attempt.span_id for t in tasks)
    assert run_span.attributes["legato.state"] == "completed"
    (run,) = get_default_store().list_flow_runs(limit=5)
    assert run_span.attributes["legato.flow_run.id"] == run.id


def test_a_worker_child_exports_its_spans_before_it_leaves(
    receiver: Receiver, env: dict[str, str], flows_file: Path, tmp_path: Path
) -> None:
    client = Client()
    client.deploy(f"{flows_file}:pipeline", name="otlp-dep")
    run = client.trigger("otlp-dep", {"n": 3})
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        # --warm-runs 1: the child leaves (os._exit) right after the run.
        [sys.executable, "-m", "legato", "worker", "--warm-runs", "1", "--no-scheduler"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        wait_until(
            lambda: len(named(received(receiver), "flow pipeline")) == 1,
            timeout=90,
            what="the worker's child exported the run's spans",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    stored = client.store.get_flow_run(run.id)
    assert stored is not None and stored.state is StateType.COMPLETED
    spans = received(receiver)
    (run_span,) = named(spans, "flow pipeline")
    assert run_span.attributes["legato.deployment.name"] == "otlp-dep"
    assert run_span.attributes["legato.flow_run.id"] == run.id
    tasks = [s for s in spans if s.name.startswith("task step[")]
    assert len(tasks) == 3 and {s.trace_id for s in spans} == {run_span.trace_id}


def test_a_killed_run_resumed_in_another_process_is_one_trace_at_the_receiver(
    receiver: Receiver, env: dict[str, str], flows_file: Path
) -> None:
    killed = legato(env, "run", f"{flows_file}:pipeline", LEGATO_FAULTS="kill-after=step[1]")
    assert killed.returncode == -9, killed.stderr  # SIGKILLed: it exported nothing
    reset_default_store()
    (run,) = get_default_store().list_flow_runs(limit=5)
    resumed = legato(env, "resume", run.id)
    assert resumed.returncode == 0, resumed.stderr
    spans = received(receiver)
    assert spans and {s.trace_id for s in spans} == {run.trace_context.split("-")[1]}  # type: ignore[union-attr]
    (run_span,) = named(spans, "flow pipeline")
    attempts = sorted((s for s in spans if s.name.startswith("attempt ")), key=lambda s: s.name)
    # The resuming process ends the killed attempt's span (crashed) with the id its
    # task spans were given, then its own.
    assert [(s.name, s.attributes["legato.state"]) for s in attempts] == [
        ("attempt 1", "crashed"),
        ("attempt 2", "completed"),
    ]
    assert all(a.parent_id == run_span.span_id for a in attempts)
    replayed = sorted(
        s.attributes["legato.task.call_key"] for s in spans if s.attributes.get("legato.replayed")
    )
    assert replayed == ["step[0]", "step[1]"]


OFF = textwrap.dedent(
    """
    import sys

    import legato
    from legato import flow, task
    from legato.engine.context import FLOW_CONTEXT


    @task
    def look():
        legato.get_run_logger().info("a line")
        return type(FLOW_CONTEXT.get().observer).__name__


    @flow
    def off():
        legato.sleep(0.001)
        return [look() for _ in range(3)]


    observers = off()
    loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
    print(observers, loaded)
    """
)


def test_traces_off_cost_nothing_on_the_task_path(legato_home: Path) -> None:
    # No endpoint, no LEGATO_OTEL: a flow with tasks, logs and a sleep imports no
    # opentelemetry module and its task calls see no observer (no wrapper object).
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LEGATO_OTEL", "OTEL_EXPORTER_OTLP_ENDPOINT")
    }
    done = subprocess.run(
        [sys.executable, "-c", OFF],
        env={**env, "LEGATO_LOG_TO_CONSOLE": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "['NoneType', 'NoneType', 'NoneType'] []"
