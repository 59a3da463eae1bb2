"""`/metrics` scraped over real HTTP (uvicorn on a free port): run metrics read from
the store (crashed and never-started runs count), bounded label sets, token rules,
and a worker's own `--metrics-port`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from _server_support import run_flow, write_flows
from prometheus_client.parser import text_string_to_metric_families

from _waiting import wait_until
from legato.client import Client
from legato.engine.ids import new_id
from legato.metrics.collector import OTHER, StoreCollector
from legato.records import FlowRun, RunOwner, utcnow
from legato.server import create_app
from legato.states import StateType as S
from legato.store.sqlite import SQLiteStore

DOCS = Path(__file__).resolve().parents[2] / "docs"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(client: Client, token: str | None = None) -> Iterator[str]:
    """The real app, served by uvicorn in a thread on a free loopback port."""
    port = free_port()
    config = uvicorn.Config(
        create_app(client, token=token), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="uvicorn started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def scrape(url: str, **headers: str) -> Samples:
    reply = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return parse(reply.text)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    store = SQLiteStore(tmp_path / "legato.db")
    yield Client(store)
    store.close()


def queued(client: Client, flow: str, queue: str, **changes: object) -> FlowRun:
    fields: dict[object, object] = {
        "id": new_id(),
        "flow_name": flow,
        "name": "r",
        "state": S.SCHEDULED,
        "created": utcnow(),
        "work_queue": queue,
        "scheduled_time": utcnow() - timedelta(seconds=120),
    }
    fields.update(changes)
    run = FlowRun(**fields)  # type: ignore[arg-type]
    client.store.create_flow_run(run)
    return run


def test_a_scrape_counts_finished_crashed_and_waiting_runs(client: Client, tmp_path: Path) -> None:
    flows = write_flows(tmp_path)
    run_flow(client, flows, "doubled", n=2)
    run_flow(client, flows, "broken")
    crashed = queued(client, "nightly", "etl", deployment="nightly-dep")
    owner = RunOwner(token=new_id(), host="elsewhere", pid=1, pid_started=1.0)
    assert client.store.start_flow_run(crashed.id, owner, from_states=[S.SCHEDULED], now=utcnow())
    # Its worker died: another process marks it crashed; nobody pushed a metric.
    assert client.store.transition_flow_run(
        crashed.id, to_state=S.CRASHED, from_states=[S.RUNNING], now=utcnow()
    )
    queued(client, "nightly", "etl", deployment="nightly-dep")  # never started
    queued(client, "nightly", "etl", deployment="nightly-dep")

    with serving(client) as url:
        samples = scrape(url)
    total = "legato_flow_runs_total"
    assert value(samples, total, flow="doubled", deployment="", state="completed") == 1
    assert value(samples, total, flow="broken", deployment="", state="failed") == 1
    assert value(samples, total, flow="nightly", deployment="nightly-dep", state="crashed") == 1
    assert value(samples, total, flow="nightly", deployment="nightly-dep", state="scheduled") == 3
    assert value(samples, "legato_flow_runs", state="scheduled", work_queue="etl") == 2
    assert value(samples, "legato_work_queue_depth", work_queue="etl") == 2
    assert value(samples, "legato_work_queue_oldest_seconds", work_queue="etl") >= 120
    duration = "legato_flow_run_duration_seconds"
    assert value(samples, f"{duration}_count", flow="doubled", deployment="") == 1
    assert value(samples, f"{duration}_count", flow="nightly", deployment="nightly-dep") == 1
    lateness = "legato_flow_run_start_lateness_seconds_count"
    assert value(samples, lateness, deployment="nightly-dep", work_queue="etl") == 1
    assert value(samples, "legato_workers") == 0
    tasks = "legato_task_runs_total"  # by task name, never call key (double[0], double[1])
    assert value(samples, tasks, flow="doubled", task="double", state="completed") == 2
    assert value(samples, tasks, flow="doubled", task="total", state="completed") == 1
    assert value(samples, tasks, flow="broken", task="double", state="completed") == 1
    assert (
        value(samples, "legato_task_run_duration_seconds_count", flow="doubled", task="double") == 2
    )
    assert value(samples, "legato_task_cache_hits_total") == 0
    ops = {
        dict(labels)["op"] for name, labels in samples if name == "legato_store_op_seconds_count"
    }
    assert "metric_run_counts" in ops
    # No run id anywhere in the exposition.
    assert all(crashed.id not in str(labels) for _, labels in samples)


def test_label_sets_stay_bounded_with_many_names(client: Client) -> None:
    for i in range(120):
        queued(client, f"flow-{i:03d}", f"queue-{i:03d}", deployment=f"dep-{i:03d}")
    collector = StoreCollector(client.store, cache_seconds=0, max_names=10)
    families = {(family.name, family.type): family for family in collector.collect()}
    totals = families[("legato_flow_runs", "counter")].samples
    assert len({s.labels["flow"] for s in totals}) == 11
    assert OTHER in {s.labels["flow"] for s in totals}
    assert sum(s.value for s in totals) == 120
    assert len(families[("legato_work_queue_depth", "gauge")].samples) == 11
    assert len(families[("legato_flow_runs", "gauge")].samples) == 11
    for family in families.values():
        label_sets = {tuple(sorted(s.labels.items())) for s in family.samples}
        assert len(label_sets) <= 11 * 14 * 3  # names x (buckets + sum/count) at most


def test_snapshot_is_cached(client: Client) -> None:
    collector = StoreCollector(client.store, cache_seconds=3600)
    first = collector.snapshot()
    queued(client, "late", "q")
    assert collector.snapshot() is first
    assert StoreCollector(client.store, cache_seconds=0).snapshot().counts != first.counts


def test_tokens_guard_the_scrape(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATO_METRICS_TOKEN", "scrape-me")
    with serving(client, token="api-secret") as url:
        assert httpx.get(f"{url}/metrics", timeout=30).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.get(f"{url}/metrics", headers=wrong, timeout=30).status_code == 401
        assert "legato_workers" in {n for n, _ in scrape(url, Authorization="Bearer api-secret")}
        assert "legato_workers" in {n for n, _ in scrape(url, Authorization="Bearer scrape-me")}
    monkeypatch.delenv("LEGATO_METRICS_TOKEN")
    with serving(client) as url:  # loopback, no token: open, like the API
        assert "legato_workers" in {n for n, _ in scrape(url)}


WORKER_FLOW = """
from legato import flow


@flow
def hello(n: int = 1) -> int:
    return n + 1
"""


def total(samples: Samples, name: str) -> float:
    return sum(value for (found, _), value in samples.items() if found == name)


def worker_samples(url: str, **headers: str) -> Samples | None:
    try:
        reply = httpx.get(url, headers=headers, timeout=5)
    except httpx.TransportError:
        return None  # not listening yet
    assert reply.status_code == 200, reply.text
    return parse(reply.text)


def test_a_worker_serves_its_own_metrics(
    legato_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGATO_METRICS_TOKEN", "w-token")
    (tmp_path / "hello_flow.py").write_text(WORKER_FLOW)
    client = Client()
    client.deploy(f"{tmp_path / 'hello_flow.py'}:hello", name="hello")
    run = client.trigger("hello", {"n": 2})
    port = free_port()
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "legato", "worker", "--metrics-port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    log.close()
    url = f"http://127.0.0.1:{port}/metrics"
    found: list[Samples] = []

    def finished_one() -> bool:
        samples = worker_samples(url, Authorization="Bearer w-token")
        if samples is None:
            return False
        found.append(samples)
        return total(samples, "legato_worker_runs_finished_total") == 1

    try:
        wait_until(lambda: proc.poll() is not None or finished_one(), timeout=60, what="a run")
        assert proc.poll() is None, (tmp_path / "worker.log").read_text()
        assert httpx.get(url, timeout=5).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    samples = found[-1]
    names = {name for name, _ in samples}
    assert {"legato_worker_claims_total", "legato_worker_children"} <= names
    claims = {
        dict(labels)["op"]: n
        for (name, labels), n in samples.items()
        if name == "legato_store_op_seconds_count"
    }
    assert claims["claim_flow_run"] >= 1
    assert client.store.get_flow_run(run.id).state == S.COMPLETED  # type: ignore[union-attr]


def exported_names(client: Client) -> set[str]:
    """Every sample name `/metrics` and a worker's metrics can show."""
    from legato.metrics.collector import StoreCollector
    from legato.metrics.store_timing import instrument_store
    from legato.metrics.worker import WorkerCollector

    queued(client, "f", "q")
    timings = instrument_store(client.store)
    client.store.metric_run_counts()

    class Figures:
        name = "w"
        claimed = 0
        completed = 0
        children_alive = 0

    families = [
        *StoreCollector(client.store, cache_seconds=0, timings=timings).collect(),
        *WorkerCollector(Figures()).collect(),
    ]
    names = {family.name for family in families}
    for family in families:
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names |= {f"{family.name}_{end}" for end in ("bucket", "sum", "count")}
    return names


def test_the_grafana_dashboard_queries_only_exported_metrics(client: Client) -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = {name for expr in exprs for name in re.findall(r"\blegato_[a-z_]+", expr)}
    assert len(named) >= 10
    assert named <= exported_names(client), named - exported_names(client)


def test_worker_metrics_refuse_an_open_address_without_a_token(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from legato.errors import ConfigurationError
    from legato.metrics.worker import WorkerMetricsServer

    class Figures:
        name = "w"
        claimed = 0
        completed = 0
        children_alive = 0

    monkeypatch.delenv("LEGATO_METRICS_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="LEGATO_METRICS_TOKEN"):
        WorkerMetricsServer(Figures(), client.store, host="0.0.0.0", port=0)
    served = WorkerMetricsServer(Figures(), client.store, host="127.0.0.1", port=0)
    try:
        with pytest.raises(ConfigurationError, match="another --metrics-port"):
            WorkerMetricsServer(Figures(), client.store, host="127.0.0.1", port=served.port)
        samples = parse(httpx.get(f"http://127.0.0.1:{served.port}/metrics", timeout=5).text)
        assert total(samples, "legato_worker_claims_total") == 0
    finally:
        served.close()


def test_without_prometheus_client_the_server_runs_without_metrics(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    with serving(client) as url:
        assert httpx.get(f"{url}/api/health", timeout=30).status_code == 200
        assert httpx.get(f"{url}/metrics", timeout=30).status_code == 404


FLAKY_FLOW = """
from pathlib import Path

from legato import flow, task


@task
def step(i: int) -> int:
    return i


@task
def flaky(marker: str) -> str:
    if not Path(marker).exists():
        Path(marker).write_text("failed once")
        raise RuntimeError("the first attempt fails")
    return "ok"


@flow
def flaky_flow(marker: str) -> str:
    for i in range(3):
        step(i)
    return flaky(marker)
"""


def test_a_resumed_run_only_adds_to_the_counters(client: Client, tmp_path: Path) -> None:
    (tmp_path / "flaky_flows.py").write_text(FLAKY_FLOW)
    flaky_flow = client.load_flow(f"{tmp_path / 'flaky_flows.py'}:flaky_flow")
    failed = client.run_flow(flaky_flow, {"marker": str(tmp_path / "marker")})
    assert failed.type is S.FAILED and failed.run_id is not None
    tasks = "legato_task_runs_total"
    with serving(client) as url:
        first = scrape(url)
    assert value(first, tasks, flow="flaky_flow", task="step", state="completed") == 3
    assert value(first, tasks, flow="flaky_flow", task="flaky", state="failed") == 1
    assert ("legato_task_replays_total", (("flow", "flaky_flow"),)) not in first
    # Resumed: the three steps replay from the journal, the failed call runs again.
    assert client.resume_run(failed.run_id).type is S.COMPLETED
    collector = StoreCollector(client.store, cache_seconds=0)
    samples = parse_families(collector)
    for key, n in first.items():  # counters never go down
        if key[0].endswith("_total"):
            assert samples.get(key, 0) >= n, key
    assert value(samples, tasks, flow="flaky_flow", task="step", state="completed") == 3
    assert value(samples, tasks, flow="flaky_flow", task="flaky", state="failed") == 1
    assert value(samples, tasks, flow="flaky_flow", task="flaky", state="completed") == 1
    assert value(samples, "legato_task_replays_total", flow="flaky_flow") == 3
    # Every event the store holds is counted once, by name.
    stored = client.store.read_events(None, limit=10_000).events
    events = {key: n for key, n in samples.items() if key[0] == "legato_events_total"}
    assert sum(events.values()) == len(stored) > 0
    for event in {e.event for e in stored}:
        assert value(samples, "legato_events_total", event=event) == sum(
            1 for e in stored if e.event == event
        )


def parse_families(collector: StoreCollector) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_event_names_are_capped(client: Client) -> None:
    from legato._event_records import Event

    client.store.emit_events(
        [
            Event(
                id=f"ev-{i}",
                event=f"test.kind-{i:03d}",
                occurred=utcnow(),
                resource={"legato.resource.id": f"thing.{i}"},
                related=(),
                payload={},
            )
            for i in range(30)
        ]
    )
    samples = parse_families(StoreCollector(client.store, cache_seconds=0, max_names=10))
    names = {dict(labels)["event"] for name, labels in samples if name == "legato_events_total"}
    assert len(names) == 11 and OTHER in names
    assert total(samples, "legato_events_total") == 30


def test_model_call_tries_tokens_and_cost_are_counted_and_capped() -> None:
    import legato
    from _llm_runs import PRICES, TRY_COST, triage_run
    from legato import ai
    from legato.ai.testing import FakeModel
    from legato.store import get_default_store
    from legato.testing import run_flow as run_here

    ai.set_prices(PRICES)
    try:
        triage_run()
        triage_run()
        other = FakeModel(model="other-model", usage=ai.LLMUsage(10, 5, 4, 2)).returning(["x"])

        @legato.flow
        def note() -> str:
            return str(ai.call(other, "hello").output)

        run_here(note).raise_for_state()
    finally:
        ai.reset_prices()
    store = get_default_store()
    with serving(Client(store)) as url:
        samples = scrape(url)
    labels = {"flow": "triage", "deployment": "", "provider": "fake", "model": "fake-model"}
    assert value(samples, "legato_llm_calls_total", **labels) == 8  # validation retries count
    assert value(samples, "legato_llm_tokens_total", kind="input", **labels) == 800
    assert value(samples, "legato_llm_tokens_total", kind="output", **labels) == 160
    assert value(samples, "legato_llm_tokens_total", kind="cached", **labels) == 0
    assert value(samples, "legato_llm_cost_usd_total", **labels) == pytest.approx(8 * TRY_COST)
    note_labels = {"flow": "note", "deployment": "", "provider": "fake", "model": "other-model"}
    assert value(samples, "legato_llm_tokens_total", kind="cached", **note_labels) == 4
    assert value(samples, "legato_llm_tokens_total", kind="reasoning", **note_labels) == 2
    assert value(samples, "legato_llm_cost_usd_total", **note_labels) == 0  # no price

    # One name of each kind kept: the busier flow and model, the rest "other".
    capped = StoreCollector(store, cache_seconds=0, max_names=1)
    families = {family.name: family for family in capped.collect()}
    calls = {
        (s.labels["flow"], s.labels["model"]): s.value for s in families["legato_llm_calls"].samples
    }
    assert calls == {("triage", "fake-model"): 8, (OTHER, OTHER): 1}
