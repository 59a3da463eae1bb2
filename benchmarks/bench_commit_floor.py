"""The floor of a durable task on SQLite, side by side with legato's cost.

A durable task commits its record before the flow moves on, so one SQLite commit is
the least it can cost. This prints, measured in the same run on the same disk:

- a bare single-row SQLite commit (WAL, ``synchronous=NORMAL``, an autocommit
  insert of a small row into a fresh file), per commit;
- legato's sequential durable task (10,000 trivial tasks in one flow, minus the same
  loop of plain calls), per task;
- their ratio (issue 13's target: at most 2x).

    python benchmarks/bench_commit_floor.py [--n 10000] [--repeats 5]

Results land in benchmarks/results/commit_floor.json.
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

sys.path.insert(0, str(Path(__file__).parent))

from bench_core import bench_sequential


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
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
