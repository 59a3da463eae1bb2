"""Events and automations: ingest, event -> triggered run, evaluation lag.

Run:  python benchmarks/events.py                    (SQLite and PostgreSQL, ~2-3 minutes)
      python benchmarks/events.py --backend sqlite --quick
      python benchmarks/events.py --postgres-url postgresql://user@host/db

Per store:

- ingest: events stored per second by one process, one ``legato.emit_event``
  call per event, ``store.emit_events`` batches of 100, and ``POST /api/events``
  to a real ``legato server`` (one event per request, and 100 per request);
- event -> run: a deployment triggered by an automation on ``bench.go``, one
  real ``legato worker`` process leading (it evaluates automations and runs the
  triggered run); the time from ``emit_event`` to the run being RUNNING (its
  ``start_time``), p50 / p95 over sequential events;
- evaluation lag: 1,000 automations (exact names pinned to resources, and
  prefix ones whose labels never match) while this process emits 500 events/s
  for 20 s (batches of 10 every 20 ms); the lag of an event is the time from its
  emit call returning to the first moment a monitor (polling every 20 ms) sees
  the evaluator's committed cursor past it; p50 / p99 / max;
- the sequential task benchmark of ``bench_core.py`` (10,000 tasks, median of 3).

PostgreSQL is ``--postgres-url`` (a server whose user may create databases), else
``LEGATO_TEST_DATABASE_URL``, else a throwaway cluster started as the tests do
(tests/postgres_server.py), over loopback. Results go to
benchmarks/results/events.json (not with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import bench_core  # noqa: E402
import httpx  # noqa: E402
from _timing import percentiles_ms  # noqa: E402
from bench_server import Server  # noqa: E402
from bench_workers import _stop  # noqa: E402

FLOWS = """
from legato import flow


@flow
def bench(tag: str = "") -> str:
    return tag
"""


def _use(env: dict[str, str]) -> Any:
    """Point this process's default store at ``env``'s store; the store."""
    for key in ("LEGATO_DATABASE_URL", "LEGATO_HOME"):
        os.environ.pop(key, None)
    os.environ.update(env)
    from legato.store import get_default_store, reset_default_store

    reset_default_store()
    return get_default_store()


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1)


def _timed(seconds: float, step: Callable[[int], int]) -> float:
    """Call ``step(n)`` (it returns how many events it stored) for ``seconds``; per second."""
    done, n, t0 = 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        done += step(n)
        n += 1
    return _rate(done, time.perf_counter() - t0)


# --- ingest -------------------------------------------------------------------


def bench_ingest(env: dict[str, str], workdir: Path, seconds: float) -> dict[str, Any]:
    import legato
    from legato._event_records import Event
    from legato.records import utcnow

    store = _use(env)
    run = uuid.uuid4().hex[:8]

    def single(n: int) -> int:
        legato.emit_event("bench.ingest", {"legato.resource.id": f"bench.item.{n % 100}"})
        return 1

    def batched(n: int) -> int:
        now = utcnow()
        store.emit_events(
            [
                Event(
                    id=f"{run}-{n}-{i}",
                    event="bench.ingest",
                    occurred=now,
                    resource={"legato.resource.id": f"bench.item.{i}"},
                )
                for i in range(100)
            ]
        )
        return 100

    results: dict[str, Any] = {
        "emit_event_per_s": _timed(seconds, single),
        "emit_events_100_per_s": _timed(seconds, batched),
    }
    server = Server(env, workdir)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:

            def post_one(n: int) -> int:
                body = {"event": "bench.http", "resource": {"legato.resource.id": f"b.{n}"}}
                http.post("/api/events", json=body).raise_for_status()
                return 1

            def post_batch(n: int) -> int:
                body = [
                    {"event": "bench.http", "resource": {"legato.resource.id": f"b.{i}"}}
                    for i in range(100)
                ]
                http.post("/api/events", json=body).raise_for_status()
                return 100

            results["post_api_events_per_s"] = _timed(seconds, post_one)
            results["post_api_events_100_per_s"] = _timed(seconds, post_batch)
    finally:
        server.stop()
    return results


# --- event -> triggered run ------------------------------------------------------


def _apply(store: Any, specs: list[dict[str, Any]]) -> None:
    from legato.automations import service
    from legato.automations.model import parse_automation

    service.apply(store, [parse_automation(spec) for spec in specs])


def bench_trigger(store: Any, events: int) -> dict[str, Any]:
    import legato

    _apply(
        store,
        [
            {
                "name": "bench-go",
                "trigger": {"expect": ["bench.go"]},
                "actions": [
                    {
                        "type": "run-deployment",
                        "deployment": "bench",
                        "parameters": {"tag": "{{ event.id }}"},
                    }
                ],
            }
        ],
    )
    seen = {r.id for r in store.list_flow_runs(deployment="bench", limit=1000)}
    latencies = []
    for n in range(-1, events):  # -1: a warm-up (the first child imports the flow file)
        t0 = time.time()
        legato.emit_event("bench.go", {"legato.resource.id": f"bench.go.{n}"})
        deadline = t0 + 30
        while True:
            runs = [
                r for r in store.list_flow_runs(deployment="bench", limit=5) if r.id not in seen
            ]
            started = [r for r in runs if r.start_time is not None]
            if started:
                seen.add(started[0].id)
                if n >= 0:
                    latencies.append(started[0].start_time.timestamp() - t0)
                break
            if time.time() > deadline:
                raise RuntimeError(f"event {n}: no triggered run started within 30 s")
            time.sleep(0.002)
        time.sleep(0.2)  # the worker settles (its child ends) before the next event
    found = percentiles_ms(latencies)
    return {"p50_ms": found["p50_ms"], "p95_ms": found["p95_ms"], "events": len(latencies)}


# --- evaluation lag -----------------------------------------------------------------


def _lag_automations(count: int) -> list[dict[str, Any]]:
    specs = []
    for i in range(count):
        trigger: dict[str, Any]
        if i % 10 == 9:  # a prefix trigger every event reaches, whose labels never match
            trigger = {"expect": ["bench.lag.*"], "match": {"bench.kind": "never"}}
        else:
            trigger = {
                "expect": [f"bench.lag.{i % 50}"],
                "match": {"legato.resource.id": f"bench.item.{i % 200}"},
                "threshold": 1_000_000,
                "within": 3600,
            }
        specs.append(
            {
                "name": f"lag-{i}",
                "trigger": trigger,
                "actions": [{"type": "pause-deployment", "deployment": "none"}],
            }
        )
    return specs


def bench_lag(store: Any, automations: int, rate: int, seconds: float) -> dict[str, Any]:
    from legato._event_records import Event
    from legato.records import utcnow

    _apply(store, _lag_automations(automations))
    time.sleep(1.0)  # the evaluator's index picks them up
    stored: list[tuple[int, float]] = []  # (seq, time the emit call returned)
    seen: list[tuple[int | None, float]] = []  # (first unread seq or None, time seen)
    stop = threading.Event()

    def monitor() -> None:
        while not stop.is_set():
            cursor = store.get_evaluator_cursor("default")
            first = store.read_events(cursor, limit=1).events
            seen.append((first[0].seq if first else None, time.time()))
            time.sleep(0.02)

    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    per_tick, tick = rate // 50, 0.02
    run = uuid.uuid4().hex[:8]
    t0 = time.time()
    n = 0
    while time.time() - t0 < seconds:
        now = utcnow()
        batch = [
            Event(
                id=f"{run}-{n}-{i}",
                event=f"bench.lag.{(n * per_tick + i) % 50}",
                occurred=now,
                resource={"legato.resource.id": f"bench.item.{(n * per_tick + i) % 200}"},
            )
            for i in range(per_tick)
        ]
        seqs = store.emit_events(batch)
        done = time.time()
        stored += [(s, done) for s in seqs if s is not None]
        n += 1
        time.sleep(max(0.0, t0 + n * tick - time.time()))
    emitted_for = time.time() - t0
    last = max(s for s, _ in stored)
    deadline = time.time() + 60
    while time.time() < deadline and not any(
        u is None or u > last for u, _ in seen[-3:]
    ):  # caught up with the last event
        time.sleep(0.05)
    stop.set()
    watcher.join()
    lags = []
    k = 0
    for seq, at in sorted(stored):
        while k < len(seen):
            first, when = seen[k]
            if (first is None or first > seq) and when >= at:
                break
            k += 1
        if k == len(seen):
            raise RuntimeError(f"event seq {seq} was never seen evaluated")
        lags.append(seen[k][1] - at)
    values = sorted(lags)
    return {
        "automations": automations,
        "events": len(stored),
        "events_per_s": _rate(len(stored), emitted_for),
        "p50_ms": round(statistics.median(values) * 1000, 1),
        "p99_ms": round(values[min(len(values) - 1, round(0.99 * (len(values) - 1)))] * 1000, 1),
        "max_ms": round(values[-1] * 1000, 1),
    }


# --- one store ------------------------------------------------------------------------


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "legato", "worker"], env=env, stdout=out, stderr=out
        )


def measure(
    ingest_env: dict[str, str], env: dict[str, str], workdir: Path, quick: bool
) -> dict[str, Any]:
    """The ingest figures on the store of ``ingest_env``, the rest on ``env``'s (a store
    the ingest did not fill, so the evaluator starts with no backlog)."""
    ingest_env = dict(ingest_env, LEGATO_LOG_TO_CONSOLE="0")
    env = dict(env, LEGATO_LOG_TO_CONSOLE="0")
    results: dict[str, Any] = {"ingest": bench_ingest(ingest_env, workdir, 1.0 if quick else 2.0)}
    store = _use(env)
    from legato.client import Client

    flows = workdir / "bench_event_flows.py"
    flows.write_text(FLOWS)
    Client(store).deploy(f"{flows}:bench", name="bench")
    workers = [_worker(env, workdir / "worker.log")]
    try:
        deadline = time.time() + 60
        while store.get_lease("legato-scheduler") is None:  # the worker leads
            if time.time() > deadline:
                raise RuntimeError("the worker did not take the scheduler lease within 60 s")
            time.sleep(0.05)
        time.sleep(1.0)  # its fork server is up
        results["event_to_run"] = bench_trigger(store, 10 if quick else 40)
        results["evaluation_lag"] = bench_lag(store, 1000, 500, 5.0 if quick else 20.0)
    finally:
        _stop(workers)
    store.close()
    return results


def sequential(quick: bool) -> dict[str, Any]:
    n = 2000 if quick else 10_000
    found = bench_core.bench_sequential(n, 3)
    return {"tasks": n, "per_task_us": round(found["per_task_us"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--postgres-url", help="a PostgreSQL server whose user may create databases"
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs, for a smoke check")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    base = {k: v for k, v in os.environ.items() if k not in ("LEGATO_DATABASE_URL",)}
    if args.backend in ("sqlite", "both"):
        home = Path(tempfile.mkdtemp(prefix="legato-bench-events-"))
        ingest = dict(base, LEGATO_HOME=str(home / "ingest"))
        main_env = dict(base, LEGATO_HOME=str(home / "main"))
        results["sqlite"] = measure(ingest, main_env, home, args.quick)
        for key in ("LEGATO_DATABASE_URL",):
            os.environ.pop(key, None)
        results["sqlite"]["sequential"] = sequential(args.quick)
    if args.backend in ("postgres", "both"):
        import postgres_server

        if args.postgres_url:
            os.environ[postgres_server.ENV_URL] = args.postgres_url
        server = postgres_server.get_server()
        try:
            home = Path(tempfile.mkdtemp(prefix="legato-bench-events-pg-"))
            ingest = dict(base, LEGATO_HOME=str(home), LEGATO_DATABASE_URL=server.create_database())
            main_env = dict(
                base, LEGATO_HOME=str(home), LEGATO_DATABASE_URL=server.create_database()
            )
            results["postgres"] = measure(ingest, main_env, home, args.quick)
            fresh: list[str] = []

            def fresh_database() -> None:
                from legato.store import reset_default_store

                reset_default_store()
                for old in fresh:
                    server.drop_database(old)
                fresh[:] = [server.create_database()]
                os.environ["LEGATO_DATABASE_URL"] = fresh[0]

            bench_core._fresh_home = fresh_database
            results["postgres"]["sequential"] = sequential(args.quick)
        finally:
            server.stop()

    print(
        "| store | emit_event | emit_events x100 | POST /api/events (x1 / x100) "
        "| event → run RUNNING p50 / p95 | lag p50 / p99 / max (1,000 automations) "
        "| sequential task |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        i, t, lag, seq = r["ingest"], r["event_to_run"], r["evaluation_lag"], r["sequential"]
        print(
            f"| {name} | {i['emit_event_per_s']:,.0f}/s | {i['emit_events_100_per_s']:,.0f}/s "
            f"| {i['post_api_events_per_s']:,.0f}/s / {i['post_api_events_100_per_s']:,.0f}/s "
            f"| {t['p50_ms']} / {t['p95_ms']} ms "
            f"| {lag['p50_ms']} / {lag['p99_ms']} / {lag['max_ms']} ms at "
            f"{lag['events_per_s']:,.0f} events/s | {seq['per_task_us']} µs |"
        )
    if not args.quick:
        out = HERE / "results" / "events.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nsaved {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
