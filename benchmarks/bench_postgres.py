"""PostgreSQL benchmark: per-task cost of durable execution with a PostgreSQL store.

Run:  python benchmarks/bench_postgres.py            (full sizes)
      python benchmarks/bench_postgres.py --quick    (smaller sizes, a smoke check)

The same sequential (10,000 tasks) and ``.map`` (10,000 items) workloads as
``bench_core.py``, with ``LEGATO_DATABASE_URL`` pointing at a fresh database
per repetition. The server is ``LEGATO_TEST_DATABASE_URL`` when set, else a
throwaway cluster on 127.0.0.1 started with the test helper
(``tests/postgres_server.py``: fsync, synchronous_commit and
full_page_writes off, data in memory when /dev/shm exists), reached over
loopback TCP. ``--sync`` starts the cluster with the server's durable
defaults instead (fsync, synchronous_commit, full_page_writes on) on disk
(the temporary folder), so each task also waits for a WAL flush. Also
prints a bare round trip and the store alone (``record_task_run`` per call).
Results are saved to benchmarks/results/postgres.json (postgres-sync.json).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import bench_core  # noqa: E402

import postgres_server  # noqa: E402


def _use_database(server: postgres_server.PostgresServer) -> Callable[[], None]:
    created: list[str] = []

    def fresh() -> None:
        from legato.store import reset_default_store

        reset_default_store()
        for url in created:
            server.drop_database(url)
        created.clear()
        url = server.create_database()
        created.append(url)
        os.environ["LEGATO_DATABASE_URL"] = url
        os.environ["LEGATO_LOG_TO_CONSOLE"] = "0"

    return fresh


def bench_store(server: postgres_server.PostgresServer, n: int) -> dict[str, Any]:
    """``record_task_run`` alone: a new completed task run with a small pickled result."""
    from legato.records import FlowRun, RunOwner, StoredResult, TaskRun
    from legato.states import StateType
    from legato.store.postgres import PostgresStore

    url = server.create_database()
    store = PostgresStore(url)
    try:
        now = datetime.now(UTC)
        run = FlowRun(id=uuid.uuid4().hex, flow_name="b", name="b", state=StateType.PENDING)
        store.create_flow_run(run)
        owner = RunOwner(token=uuid.uuid4().hex, host="localhost", pid=os.getpid())
        store.start_flow_run(run.id, owner, from_states=[StateType.PENDING], now=now)
        result = StoredResult("pickle", pickle.dumps({"value": 42, "items": [1, 2, 3]}))
        samples = []
        for batch in range(3):
            tasks = [
                TaskRun(
                    id=uuid.uuid4().hex,
                    flow_run_id=run.id,
                    call_key=f"add[{batch * n + i}]",
                    task_name="add",
                    name=f"add-{i}",
                    state=StateType.COMPLETED,
                    attempts=1,
                    start_time=now,
                    end_time=now,
                )
                for i in range(n)
            ]
            t0 = time.perf_counter()
            for task_run in tasks:
                store.record_task_run(task_run, owner.token, result=result)
            samples.append((time.perf_counter() - t0) / n * 1e6)
        return {"per_call_us": statistics.median(samples), "samples": samples}
    finally:
        store.close()
        server.drop_database(url)


def bench_round_trip(server: postgres_server.PostgresServer, n: int) -> dict[str, Any]:
    """``SELECT 1`` on one connection: the floor any store call pays."""
    import psycopg

    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        samples = []
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(n):
                conn.execute("SELECT 1").fetchone()
            samples.append((time.perf_counter() - t0) / n * 1e6)
    return {"per_call_us": statistics.median(samples), "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke check")
    parser.add_argument(
        "--sync", action="store_true", help="throwaway cluster with durable commits (fsync on)"
    )
    args = parser.parse_args()
    n_seq, n_map = (1000, 1000) if args.quick else (10_000, 10_000)
    repeats = 2 if args.quick else 5
    if args.sync:
        for key in ("fsync", "synchronous_commit", "full_page_writes"):
            postgres_server.ThrowawayCluster.SETTINGS[key] = "on"
        postgres_server.ThrowawayCluster.IN_MEMORY = False

    server = postgres_server.get_server()
    try:
        bench_core._fresh_home = _use_database(server)  # type: ignore[attr-defined]
        results: dict[str, Any] = {
            "round_trip": bench_round_trip(server, 2000),
            "store": bench_store(server, 2000),
            "sequential": bench_core.bench_sequential(n_seq, repeats),
            "map": bench_core.bench_map(n_map, repeats),
        }
    finally:
        from legato.store import reset_default_store

        reset_default_store()
        postgres_server.stop_server()
    results["sizes"] = {"sequential": n_seq, "map": n_map}
    results["server"] = "LEGATO_TEST_DATABASE_URL" if server.cluster is None else "throwaway"
    results["durable_commits"] = args.sync
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}

    rows = [
        ("SELECT 1 round trip (floor)", f"{results['round_trip']['per_call_us']:.0f} µs", ""),
        ("store.record_task_run alone", f"{results['store']['per_call_us']:.0f} µs", ""),
        (
            f"{n_seq:,} sequential tasks, overhead per task",
            f"{results['sequential']['per_task_us']:.0f} µs",
            "≤ 300 µs",
        ),
        (
            f"{n_map:,}-item .map, overhead per task",
            f"{results['map']['per_task_us']:.0f} µs",
            "",
        ),
    ]
    print(f"PostgreSQL over loopback TCP, durable commits: {'on' if args.sync else 'off'}")
    print("| workload | measured | target |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    if not args.quick:
        name = "postgres-sync.json" if args.sync else "postgres.json"
        out = HERE / "results" / name
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nsaved {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
