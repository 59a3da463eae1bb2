"""`legato worker --metrics-port N`: one worker's own metrics on a small HTTP server.

What only this process knows: runs it claimed, started and finished, its child
processes alive, and the timings of its store operations. The run metrics of the
whole store are `legato server`'s ``/metrics``.

Bound to 127.0.0.1 by default; on any other address a scrape needs
``Authorization: Bearer <LEGATO_METRICS_TOKEN>``, and the worker refuses to start
without that token.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from legato import settings
from legato._net import is_loopback
from legato.errors import ConfigurationError
from legato.metrics.collector import StoreTimingCollector
from legato.metrics.store_timing import instrument_store
from legato.store.base import Store


class WorkerFigures(Protocol):
    """What a worker reports about itself (`legato.worker.Worker`)."""

    name: str
    claimed: int
    completed: int

    @property
    def children_alive(self) -> int: ...


class WorkerCollector(Collector):
    """This worker's claims, starts, finishes and children."""

    def __init__(self, worker: WorkerFigures) -> None:
        self._worker = worker

    def collect(self) -> Iterator[Metric]:
        worker = self._worker
        for name, doc, value in (
            ("legato_worker_claims", "Runs this worker claimed from its queues.", worker.claimed),
            (
                "legato_worker_runs_started",
                "Runs this worker started in a child process.",
                worker.claimed,
            ),
            (
                "legato_worker_runs_finished",
                "Runs of this worker whose child process ended.",
                worker.completed,
            ),
        ):
            counter = CounterMetricFamily(name, doc, labels=["worker"])
            counter.add_metric([worker.name], value)
            yield counter
        children = GaugeMetricFamily(
            "legato_worker_children", "Child processes running a flow run now.", labels=["worker"]
        )
        children.add_metric([worker.name], worker.children_alive)
        yield children


class WorkerMetricsServer:
    """The HTTP server of one worker's metrics, in a daemon thread."""

    def __init__(self, worker: WorkerFigures, store: Store, *, host: str, port: int) -> None:
        token = settings.metrics_token()
        if token is None and not is_loopback(host):
            raise ConfigurationError(
                f"refusing to serve worker metrics on {host} without LEGATO_METRICS_TOKEN: "
                f"set LEGATO_METRICS_TOKEN (scrapes then send it as a bearer token), or "
                f"leave the metrics on 127.0.0.1"
            )
        registry = CollectorRegistry(auto_describe=False)
        registry.register(WorkerCollector(worker))
        registry.register(StoreTimingCollector(instrument_store(store)))
        expected = None if token is None else f"Bearer {token}".encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] not in ("/", "/metrics"):
                    self.send_error(404, "only /metrics is served here")
                    return
                given = (self.headers.get("Authorization") or "").encode()
                if expected is not None and not hmac.compare_digest(given, expected):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", "Bearer")
                    self.end_headers()
                    self.wfile.write(b"missing or wrong LEGATO_METRICS_TOKEN bearer token\n")
                    return
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # scrapes are not worth a log line each

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve worker metrics on {host}:{port}: {exc.strerror or exc}; "
                f"pick another --metrics-port (or --metrics-host)"
            ) from None
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="legato-worker-metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
