"""The floor of a durable task on SQLite, side by side with legato's cost.

A durable task commits its record before the flow moves on, so one SQLite commit is
the least it can cost. This prints, measured in the same run on the same disk:

- a bare single-row SQLite commit (WAL, ``synchronous=NORMAL``, an autocommit
  insert of a small row into a fresh file), per commit;
- legato's sequential durable task (10,000 trivial tasks in one flow, minus the same
  loop of plain calls), per task;
- their ratio (issue 13's target: at most 2x).

    python benchmarks/bench_commit_floor.py [--n 10000] [--repeats 5]

Results land in benchmarks/results/commit_floor.json. ``--breakdown`` prints
instead where a task's time goes (docs/architecture.md, "Where a sequential
task's time goes"): the engine's Python with the store stubbed out, the store's
task-run write on prebuilt records, and the bare journal statement on the same
connection (each the best of --repeats).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_core import _fresh_home, _inc, bench_sequential


def bare_commit_us(n: int) -> float:
    """Microseconds per autocommit insert of one small row into a WAL file."""
    folder = tempfile.mkdtemp(prefix="legato-floor-")
    conn = sqlite3.connect(os.path.join(folder, "floor.db"), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, key TEXT, value BLOB)")
        row = b"x" * 64
        started = time.perf_counter()
        for i in range(n):
            conn.execute("INSERT INTO t (key, value) VALUES (?, ?)", (f"task[{i}]", row))
        return (time.perf_counter() - started) / n * 1e6
    finally:
        conn.close()


def breakdown(n: int, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` µs per task: whole task, engine only, store write, SQL only."""
    import dataclasses

    from legato import flow, task
    from legato.store.sqlite import rows
    from legato.store.sqlite import store as sqlite_store

    store_class = sqlite_store.SQLiteStore
    real = store_class.record_task_run
    inc = task(_inc)

    @flow
    def sequential(n: int) -> int:
        return sum(inc(i) for i in range(n))

    def per_task() -> float:
        _fresh_home()
        sequential(10)
        started = time.perf_counter()
        sequential(n)
        return (time.perf_counter() - started) / n * 1e6

    def stub(
        self: Any, task_run: Any, owner_token: str, *, result: Any = None, logs: Any = ()
    ) -> None:
        rows.task_run_params(task_run, owner_token, result)  # the row is still built

    seen: list[tuple[Any, Any, str, Any]] = []

    def spy(
        self: Any, task_run: Any, owner_token: str, *, result: Any = None, logs: Any = ()
    ) -> None:
        seen.append((self, task_run, owner_token, result))
        real(self, task_run, owner_token, result=result, logs=logs)

    out: dict[str, list[float]] = {"task": [], "engine": [], "store": [], "sql": []}
    try:
        for _ in range(repeats):
            out["task"].append(per_task())
            store_class.record_task_run = stub  # type: ignore[method-assign]
            out["engine"].append(per_task())
            store_class.record_task_run = real  # type: ignore[method-assign]

        @flow
        def store_alone() -> None:
            store_class.record_task_run = spy  # type: ignore[method-assign]
            inc(0)
            store_class.record_task_run = real  # type: ignore[method-assign]
            store, record, token, result = seen[-1]
            conn = store._db._conn
            fold_every = sqlite_store._FOLD_EVERY
            count = 0

            def records() -> list[Any]:
                nonlocal count
                count += n
                return [
                    dataclasses.replace(record, id=f"{i:032x}", call_key=f"x[{i}]")
                    for i in range(count - n, count)
                ]

            for _ in range(repeats):
                batch = records()
                started = time.perf_counter()
                for item in batch:
                    store.record_task_run(item, token, result=result)
                out["store"].append((time.perf_counter() - started) / n * 1e6)
                params = [rows.task_run_params(item, token, result) for item in records()]
                started = time.perf_counter()
                for i, row in enumerate(params):
                    conn.execute(sqlite_store._JOURNAL_TASK_RUN, row)
                    if i % fold_every == fold_every - 1:
                        store._fold()  # the fold's share, as the store pays it
                out["sql"].append((time.perf_counter() - started) / n * 1e6)

        _fresh_home()
        store_alone()
    finally:
        store_class.record_task_run = real  # type: ignore[method-assign]
    return {part: min(samples) for part, samples in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--breakdown", action="store_true", help="where a task's time goes")
    args = parser.parse_args()
    if args.breakdown:
        commit = min(bare_commit_us(args.n) for _ in range(args.repeats))
        parts = breakdown(args.n, args.repeats)
        print("| part of one sequential task (best of --repeats) | µs |")
        print("|---|---|")
        print(f"| bare SQLite WAL commit | {commit:.1f} |")
        print(f"| whole task (flow, per call) | {parts['task']:.1f} |")
        print(f"| engine's Python (store stubbed, row still built) | {parts['engine']:.1f} |")
        print(f"| journal statement and commit, fold amortized | {parts['sql']:.1f} |")
        print(f"| store's Python around it | {parts['store'] - parts['sql']:.1f} |")
        return
    commits = [bare_commit_us(args.n) for _ in range(args.repeats)]
    task = bench_sequential(args.n, args.repeats)
    commit_us = statistics.median(commits)
    task_us = float(task["per_task_us"])
    ratio = task_us / commit_us
    print("| measured in one run | per item |")
    print("|---|---|")
    print(f"| bare SQLite WAL commit (synchronous=NORMAL, one row) | {commit_us:.1f} µs |")
    print(f"| legato sequential durable task | {task_us:.1f} µs |")
    print(f"| ratio (target ≤ 2x) | {ratio:.2f}x |")
    results = Path(__file__).parent / "results" / "commit_floor.json"
    results.write_text(
        json.dumps(
            {
                "bare_commit_us": commit_us,
                "bare_commit_samples": commits,
                "task_us": task_us,
                "task_samples": task["samples"],
                "ratio": ratio,
                "n": args.n,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"saved {results}")


if __name__ == "__main__":
    main()
