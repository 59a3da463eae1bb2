"""The floor of a durable task on SQLite, side by side with legato's cost.

A durable task commits its record before the flow moves on, so one SQLite commit is
the least it can cost. This prints, measured in the same run on the same disk:

- a bare single-row SQLite commit, an autocommit insert into a fresh WAL file, two
  ways: the like-with-like one (the task-run journal's table and a real task's row,
  on a connection with the store's own pragma values: WAL, ``synchronous=NORMAL``,
  checkpoint interval, cache) and a small two-column row (``synchronous=NORMAL``);
- legato's sequential durable task (10,000 trivial tasks in one flow, minus the same
  loop of plain calls), per task, on a store whose schema a warm-up run created;
- the task's ratio to each (issue 13's target: at most 2x the like-with-like one).
  The three are measured in alternating rounds; the figures are the medians.

    python benchmarks/bench_commit_floor.py [--n 10000] [--repeats 5]

Results land in benchmarks/results/commit_floor.json. ``--breakdown`` prints
instead where a task's time goes (docs/architecture.md, "Where a sequential
task's time goes"): the engine's Python and the row build with the write left
out, the store's single-statement write on prebuilt rows, and the bare journal
statement on the same connection (each the best of --repeats).
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
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).parent))

from bench_core import _fresh_home, _inc, sequential_overhead_us


def bare_commit_us(n: int, like: TaskRow | None = None) -> float:
    """Microseconds per autocommit insert of one row into a fresh WAL file.

    With ``like`` (`task_row`), the comparison is like with like: the table has
    the task-run journal's columns, each row is a real task's record (its id and
    call key made unique), and the connection gets the store's own pragma values
    (journal mode, ``synchronous``, checkpoint interval, cache). Without it, a
    small two-column row on a default WAL connection (``synchronous=NORMAL``).
    """
    folder = tempfile.mkdtemp(prefix="legato-floor-")
    conn = sqlite3.connect(os.path.join(folder, "floor.db"), isolation_level=None)
    try:
        if like is None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, key TEXT, value BLOB)")
            small = b"x" * 64
            sql = "INSERT INTO t (key, value) VALUES (?, ?)"
            rows = [(f"task[{i}]", small) for i in range(n)]
        else:
            for name, value in like.pragmas:
                conn.execute(f"PRAGMA {name}={value}")
            conn.execute(like.create_table)
            sql = like.insert
            rows = [(f"{i:032x}", like.row[1], f"x[{i}]", *like.row[3:]) for i in range(n)]
        started = time.perf_counter()
        for row in rows:
            conn.execute(sql, row)
        return (time.perf_counter() - started) / n * 1e6
    finally:
        conn.close()


class TaskRow(NamedTuple):
    """A real sequential task's journal row, its table and its store's pragmas."""

    create_table: str
    insert: str
    row: tuple[Any, ...]
    pragmas: tuple[tuple[str, Any], ...]


_PRAGMAS = ("journal_mode", "synchronous", "wal_autocheckpoint", "cache_size", "temp_store")


def task_row() -> TaskRow:
    """Record one trivial task in a fresh store and copy what its commit wrote: the
    parameters the store's single-statement write (`_group_commit`) was given."""
    from legato import flow, task
    from legato.store.sqlite import store as sqlite_store
    from legato.store.sqlite.sql import QUERIES

    store_class = sqlite_store.SQLiteStore
    real = store_class._group_commit
    seen: list[tuple[Any, ...]] = []

    def spy(self: Any, params: tuple[Any, ...], flow_run_id: str) -> None:
        conn = self._db._conn
        create = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'task_run_journal'"
        ).fetchone()[0]
        pragmas = tuple((name, conn.execute(f"PRAGMA {name}").fetchone()[0]) for name in _PRAGMAS)
        seen.append((create, params, pragmas))
        real(self, params, flow_run_id)

    inc = task(_inc)

    @flow
    def one() -> int:
        return inc(1)

    _fresh_home()
    store_class._group_commit = spy  # type: ignore[method-assign]
    try:
        one()
    finally:
        store_class._group_commit = real  # type: ignore[method-assign]
    create, params, pragmas = seen[-1]
    columns = ", ".join(c.strip() for c in QUERIES["task_run_journal_columns"].split(","))
    width = len(params) - 2  # the fence's two parameters come last
    insert = f"INSERT INTO task_run_journal ({columns}) VALUES ({', '.join('?' * width)})"
    return TaskRow(create, insert, tuple(params[:width]), pragmas)


def breakdown(n: int, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` µs per task: whole task, engine only, store write, SQL only."""
    from legato import flow, task
    from legato.store.sqlite import store as sqlite_store

    store_class = sqlite_store.SQLiteStore
    real = store_class._group_commit
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

    def stub(self: Any, params: tuple[Any, ...], flow_run_id: str) -> None:
        """No write: the engine's Python and the row build remain."""

    seen: list[tuple[Any, tuple[Any, ...], str]] = []

    def spy(self: Any, params: tuple[Any, ...], flow_run_id: str) -> None:
        seen.append((self, params, flow_run_id))
        real(self, params, flow_run_id)

    out: dict[str, list[float]] = {"task": [], "engine": [], "store": [], "sql": []}
    try:
        for _ in range(repeats):
            out["task"].append(per_task())
            store_class._group_commit = stub  # type: ignore[method-assign]
            out["engine"].append(per_task())
            store_class._group_commit = real  # type: ignore[method-assign]

        @flow
        def store_alone() -> None:
            store_class._group_commit = spy  # type: ignore[method-assign]
            inc(0)
            store_class._group_commit = real  # type: ignore[method-assign]
            store, params, flow_run_id = seen[-1]
            conn = store._db._conn
            fold_every = sqlite_store._FOLD_EVERY
            count = 0

            def rows() -> list[tuple[Any, ...]]:
                nonlocal count
                count += n
                return [
                    (f"{i:032x}", params[1], f"x[{i}]", *params[3:])
                    for i in range(count - n, count)
                ]

            for _ in range(repeats):
                batch = rows()
                started = time.perf_counter()
                for row in batch:
                    store._group_commit(row, flow_run_id)
                out["store"].append((time.perf_counter() - started) / n * 1e6)
                batch = rows()
                started = time.perf_counter()
                for i, row in enumerate(batch):
                    conn.execute(sqlite_store._JOURNAL_TASK_RUN, row)
                    if i % fold_every == fold_every - 1:
                        store._fold()  # the fold's share, as the store pays it
                out["sql"].append((time.perf_counter() - started) / n * 1e6)

        _fresh_home()
        store_alone()
    finally:
        store_class._group_commit = real  # type: ignore[method-assign]
    return {part: min(samples) for part, samples in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--breakdown", action="store_true", help="where a task's time goes")
    args = parser.parse_args()
    if args.breakdown:
        commit = min(bare_commit_us(args.n) for _ in range(args.repeats))
        like = task_row()
        same_row = min(bare_commit_us(args.n, like) for _ in range(args.repeats))
        parts = breakdown(args.n, args.repeats)
        print("| part of one sequential task (best of --repeats) | µs |")
        print("|---|---|")
        print(f"| bare SQLite WAL commit, small row | {commit:.1f} |")
        print(f"| bare SQLite WAL commit, a task's journal row | {same_row:.1f} |")
        print(f"| whole task (flow, per call) | {parts['task']:.1f} |")
        print(f"| engine's Python and the row build (no write) | {parts['engine']:.1f} |")
        print(f"| journal statement and commit, fold amortized | {parts['sql']:.1f} |")
        print(f"| store's Python around it | {parts['store'] - parts['sql']:.1f} |")
        return
    like = task_row()
    small: list[float] = []
    same: list[float] = []
    tasks: list[float] = []
    for _ in range(args.repeats):  # alternate, so load swings hit all three
        small.append(bare_commit_us(args.n))
        same.append(bare_commit_us(args.n, like))
        # On a store already open, as the bare commit's table is made before its
        # clock starts (creating it would add about 1.2 µs a task over 10,000).
        tasks.append(sequential_overhead_us(args.n, warm=True))
    small_us, same_us, task_us = (statistics.median(x) for x in (small, same, tasks))
    ratio = task_us / same_us
    rounds = [t / c for t, c in zip(tasks, same, strict=True)]
    print(f"| measured in one run (median of {args.repeats} rounds) | per item |")
    print("|---|---|")
    print(f"| bare SQLite WAL commit, small two-column row | {small_us:.1f} µs |")
    print(f"| bare SQLite WAL commit, a task's journal row, store pragmas | {same_us:.1f} µs |")
    print(f"| legato sequential durable task | {task_us:.1f} µs |")
    print(f"| ratio to the same-row commit (target ≤ 2x) | {ratio:.2f}x |")
    print(f"| ratio to the small-row commit | {task_us / small_us:.2f}x |")
    print(f"| same-row ratio per round | {', '.join(f'{r:.2f}x' for r in rounds)} |")
    results = Path(__file__).parent / "results" / "commit_floor.json"
    results.write_text(
        json.dumps(
            {
                "bare_commit_us": same_us,
                "bare_commit_samples": same,
                "bare_commit_small_row_us": small_us,
                "bare_commit_small_row_samples": small,
                "task_us": task_us,
                "task_samples": tasks,
                "ratio": ratio,
                "ratio_small_row": task_us / small_us,
                "store_pragmas": dict(like.pragmas),
                "n": args.n,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"saved {results}")


if __name__ == "__main__":
    main()
