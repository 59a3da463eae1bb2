"""What a `/metrics` scrape costs on a store of 1,000,000 flow runs (SQLite).

Run:  python benchmarks/bench_metrics.py                 (1,000,000 runs)
      python benchmarks/bench_metrics.py --runs 100000   (quicker)
      python benchmarks/bench_metrics.py --db /tmp/m.db  (keep the store, reuse it)
      python benchmarks/bench_metrics.py --postgres      (also PostgreSQL, a throwaway cluster)

Builds a fresh SQLite store and bulk-inserts the runs in large transactions
(the run table's triggers, an event per state change, set aside during the load to
keep it short), then fills the metric tables with what folding those runs' events
would have given (one grouped statement each) and sets the fold's watermark: 200
flows, 20 deployments, 10 work queues; 97% finished (completed, failed, crashed,
cancelled, with start and end times), 2% running, 1% waiting in their queue.
Then times a whole scrape (the collector's store reads, the fold of the events
since the last one, the text exposition) cold (a new snapshot each time) and
cached (within the cache window), the median of 20 each; and the fold alone after
1,000 more runs went through pending, running and completed (3,000 events, what a
scrape every 15 s folds at 66 runs a second), the median of 5. Results go to
benchmarks/results/metrics.json.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from legato.metrics.collector import StoreCollector
from legato.store.base import Store
from legato.store.base_metrics import HISTOGRAM_BOUNDS
from legato.store.sqlite import SQLiteStore

HERE = Path(__file__).resolve().parent
FINAL = ("completed", "completed", "completed", "failed", "crashed", "cancelled")
INSERT = """
INSERT INTO flow_runs (id, state, flow_name, name, created, start_time, end_time, parameters,
                       work_queue, scheduled_time, deployment)
VALUES (?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?)
"""
FINISH = "UPDATE flow_runs SET state = ?, end_time = ? WHERE id = ?"


BUCKET = (
    "CASE "
    + " ".join(f"WHEN v <= {bound} THEN {bound}" for bound in HISTOGRAM_BOUNDS)
    + " ELSE -1 END"
)
FINAL_SQL = "('completed', 'failed', 'crashed', 'cancelled')"
#: What folding the loaded runs' events gives: each run entered its first state, the
#: finished ones 'running' and their final state, with their durations.
AGGREGATES = [
    "INSERT INTO flow_run_counts (flow_name, deployment, work_queue, state, entered, current)"
    " SELECT flow_name, coalesce(deployment, ''), coalesce(work_queue, ''), state,"
    " count(*), count(*) FROM flow_runs GROUP BY 1, 2, 3, 4",
    "INSERT INTO flow_run_counts (flow_name, deployment, work_queue, state, entered, current)"
    " SELECT flow_name, coalesce(deployment, ''), coalesce(work_queue, ''), 'running',"
    f" count(*), 0 FROM flow_runs WHERE state IN {FINAL_SQL} GROUP BY 1, 2, 3"
    " ON CONFLICT DO UPDATE SET entered = entered + excluded.entered",
    "INSERT INTO flow_run_histograms (metric, a, b, le, n, total)"
    f" SELECT 'duration', flow_name, coalesce(deployment, ''), {BUCKET} AS le, count(*), sum(v)"
    " FROM (SELECT flow_name, deployment, max(end_time - start_time, 0.0) AS v FROM flow_runs"
    f" WHERE state IN {FINAL_SQL} AND start_time IS NOT NULL AND end_time IS NOT NULL)"
    " GROUP BY 1, 2, 3, 4",
    "INSERT INTO flow_run_metric_mark (id, seq) SELECT 1, coalesce(max(seq), 0) FROM events"
    " WHERE true ON CONFLICT DO UPDATE SET seq = excluded.seq",
]


def build(path: Path, runs: int) -> None:
    SQLiteStore(path).close()  # the schema, triggers included
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    # The triggers of the run table (an event per state change, deadlines...) are set
    # aside while inserting, so that a million runs load in reasonable time; the
    # metric tables are then filled with what folding their events would give.
    others = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'flow_runs'"
    ).fetchall()
    for name, _ in others:
        conn.execute(f"DROP TRIGGER {name}")
    now = time.time()
    batch = 50_000
    for first in range(0, runs, batch):
        rows = []
        ends = []
        for i in range(first, min(first + batch, runs)):
            created = now - 86400 + i * 0.05
            run_id = uuid.uuid4().hex
            state, start = ("scheduled", None) if i % 100 == 0 else ("running", created + 1)
            if start is not None and i % 50 != 1:  # it ends: the update the engine makes
                ends.append((FINAL[i % len(FINAL)], start + i % 700, run_id))
            rows.append(
                (
                    run_id,
                    state,
                    f"flow-{i % 200}",
                    "r",
                    created,
                    start,
                    None,
                    f"queue-{i % 10}",
                    created,
                    f"deployment-{i % 20}",
                )
            )
        conn.execute("BEGIN")
        conn.executemany(INSERT, rows)
        conn.executemany(FINISH, ends)
        conn.execute("COMMIT")
    conn.execute("BEGIN")
    for statement in AGGREGATES:
        conn.execute(statement)
    conn.execute("COMMIT")
    for _, sql in others:
        conn.execute(sql)
    conn.close()


def fold_time(store: SQLiteStore, path: Path, runs: int = 1000, rounds: int = 5) -> float:
    """Median time (ms) of one fold after ``runs`` more runs went through pending,
    running and completed (their events written by the run table's triggers)."""
    samples = []
    for _ in range(rounds):
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            now = time.time()
            ids = [uuid.uuid4().hex for _ in range(runs)]
            conn.execute("BEGIN")
            conn.executemany(
                INSERT,
                [
                    (i, "pending", "flow-new", "n", now, None, None, "queue-0", None, "d-0")
                    for i in ids
                ],
            )
            conn.executemany(
                "UPDATE flow_runs SET state = 'running', start_time = ? WHERE id = ?",
                [(now, i) for i in ids],
            )
            conn.executemany(FINISH, [("completed", now + 1.5, i) for i in ids])
            conn.execute("COMMIT")
        finally:
            conn.close()
        started = time.perf_counter()
        store.fold_run_metrics()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


PG_INSERT = """
INSERT INTO flow_runs (id, state, flow_name, name, created, start_time, parameters, work_queue,
                       scheduled_time, deployment)
SELECT md5(i::text), CASE WHEN i %% 100 = 0 THEN 'scheduled' ELSE 'running' END,
       'flow-' || (i %% 200), i::text, c,
       CASE WHEN i %% 100 = 0 THEN NULL ELSE c + interval '1 s' END,
       '{}', 'queue-' || (i %% 10), c, 'deployment-' || (i %% 20)
FROM (SELECT i, %s::timestamptz + i * interval '50 ms' AS c
      FROM generate_series(%s::bigint, %s::bigint - 1) AS i) AS g
"""
PG_AGGREGATES = [
    "INSERT INTO flow_run_counts (flow_name, deployment, work_queue, state, entered, current)"
    " SELECT flow_name, coalesce(deployment, ''), coalesce(work_queue, ''), state,"
    " count(*), count(*) FROM flow_runs GROUP BY 1, 2, 3, 4",
    "INSERT INTO flow_run_counts AS c"
    " (flow_name, deployment, work_queue, state, entered, current)"
    " SELECT flow_name, coalesce(deployment, ''), coalesce(work_queue, ''), 'running',"
    f" count(*), 0 FROM flow_runs WHERE state IN {FINAL_SQL} GROUP BY 1, 2, 3"
    " ON CONFLICT (flow_name, deployment, work_queue, state)"
    " DO UPDATE SET entered = c.entered + excluded.entered",
    "INSERT INTO flow_run_histograms (metric, a, b, le, n, total)"
    " SELECT 'duration', flow_name, coalesce(deployment, ''), legato_metric_bucket(v),"
    " count(*), sum(v) FROM (SELECT flow_name, deployment,"
    " greatest(extract(epoch FROM end_time - start_time)::double precision, 0) AS v"
    f" FROM flow_runs WHERE state IN {FINAL_SQL} AND start_time IS NOT NULL"
    " AND end_time IS NOT NULL) AS d GROUP BY 1, 2, 3, 4",
    "UPDATE flow_run_metric_mark SET txid = newest.txid, seq = newest.seq"
    " FROM (SELECT txid, seq FROM events ORDER BY txid DESC, seq DESC LIMIT 1) AS newest"
    " WHERE id = 1",
]
PG_FINISH = """
UPDATE flow_runs
SET state = (ARRAY['completed', 'completed', 'completed', 'failed', 'crashed', 'cancelled'])
            [name::bigint %% 6 + 1],
    end_time = start_time + (name::bigint %% 700) * interval '1 s'
WHERE created >= %s::timestamptz + %s * interval '50 ms'
  AND created < %s::timestamptz + %s * interval '50 ms'
  AND state = 'running' AND name::bigint %% 50 <> 1
"""


def build_postgres(url: str, runs: int) -> None:
    """The same runs on PostgreSQL, generated by the server (the triggers of the run
    table disabled during the load, the metric tables then filled as on SQLite)."""
    import psycopg

    from legato.store.postgres import PostgresStore

    PostgresStore(url).close()  # the schema, triggers included
    with psycopg.connect(url, autocommit=True) as conn:
        others = [
            row[0]
            for row in conn.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'flow_runs'::regclass"
                " AND NOT tgisinternal"
            ).fetchall()
        ]
        for name in others:
            conn.execute(f"ALTER TABLE flow_runs DISABLE TRIGGER {name}")  # type: ignore[arg-type]
        base = datetime.now(UTC) - timedelta(days=1)
        for first in range(0, runs, 100_000):
            last = min(first + 100_000, runs)
            conn.execute(PG_INSERT, (base, first, last))  # type: ignore[arg-type]
            conn.execute(PG_FINISH, (base, first, base, last))  # type: ignore[arg-type]
        with conn.transaction():
            for statement in PG_AGGREGATES:
                conn.execute(statement)  # type: ignore[arg-type]
        for name in others:
            conn.execute(f"ALTER TABLE flow_runs ENABLE TRIGGER {name}")  # type: ignore[arg-type]
        conn.execute("ANALYZE flow_runs")


def scrape_times(store: Store) -> tuple[float, float, int]:
    """Cold and cached scrape medians (ms) and the exposition's size."""
    cold = CollectorRegistry(auto_describe=False)
    cold.register(StoreCollector(store, cache_seconds=0))
    cached = CollectorRegistry(auto_describe=False)
    cached.register(StoreCollector(store, cache_seconds=3600))
    body = generate_latest(cold)
    return (
        timed(lambda: generate_latest(cold)) * 1000,
        timed(lambda: generate_latest(cached)) * 1000,
        len(body),
    )


def timed(action: object, times: int = 20) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def bench_postgres(runs: int) -> dict[str, object]:
    sys.path.insert(0, str(HERE.parent / "tests"))
    import postgres_server
    from legato.store.postgres import PostgresStore

    server = postgres_server.get_server()
    url = server.create_database(empty=True)
    try:
        started = time.perf_counter()
        build_postgres(url, runs)
        built = time.perf_counter() - started
        store = PostgresStore(url)
        try:
            cold_ms, cached_ms, size = scrape_times(store)
        finally:
            store.close()
    finally:
        server.drop_database(url)
        postgres_server.stop_server()
    return {
        "build_seconds": round(built, 1),
        "scrape_cold_ms": round(cold_ms, 2),
        "scrape_cached_ms": round(cached_ms, 3),
        "exposition_bytes": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument(
        "--db", type=Path, default=None, help="keep the store in this file (built if missing)"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="also on a throwaway PostgreSQL cluster"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.db or Path(folder) / "legato.db"
        started = time.perf_counter()
        fresh = not path.exists()
        if fresh:
            build(path, args.runs)
        built = time.perf_counter() - started if fresh else None
        store = SQLiteStore(path)
        try:
            cold_ms, cached_ms, size = scrape_times(store)
            fold_ms = fold_time(store, path)
        finally:
            store.close()
    result: dict[str, object] = {
        "runs": args.runs,
        "build_seconds": None if built is None else round(built, 1),  # None: reused
        "scrape_cold_ms": round(cold_ms, 2),
        "scrape_cached_ms": round(cached_ms, 3),
        "exposition_bytes": size,
        "fold_1000_runs_ms": round(fold_ms, 2),
    }
    if args.postgres:
        result["postgres"] = bench_postgres(args.runs)
    print(json.dumps(result, indent=2))
    out = HERE / "results" / "metrics.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
