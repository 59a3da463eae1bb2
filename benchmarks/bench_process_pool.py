"""ProcessPoolTaskRunner against a bare ProcessPoolExecutor.map, side by side.

Both map the same trivial function over ``n`` items on ``workers`` processes
(forkserver start method), pool start-up included, best of ``repeats``:

- bare: ``ProcessPoolExecutor(...).map(fn, range(n))``;
- legato: a flow on ``ProcessPoolTaskRunner`` running ``task.map(range(n))``,
  each call replay-checked, sent, answered and recorded (one SQLite commit);
- for reference, the same flow on ``ThreadPoolTaskRunner`` (no processes).

    python benchmarks/bench_process_pool.py [--n 2000] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor


def double(x: int) -> int:
    return 2 * x


def bare_seconds(n: int, workers: int) -> float:
    started = time.perf_counter()
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        results = list(pool.map(double, range(n)))
    elapsed = time.perf_counter() - started
    if results != [2 * x for x in range(n)]:
        raise RuntimeError("bare map returned wrong results")
    return elapsed


def legato_seconds(n: int, workers: int, processes: bool = True) -> float:
    from legato import flow, task
    from legato.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

    doubled = task(name="double")(double)
    runner = ProcessPoolTaskRunner(workers) if processes else ThreadPoolTaskRunner(workers)

    @flow(name="bench-process-pool", task_runner=runner)
    def fan_out() -> list[int]:
        return doubled.map(range(n)).result()

    started = time.perf_counter()
    results = fan_out()
    elapsed = time.perf_counter() - started
    if results != [2 * x for x in range(n)]:
        raise RuntimeError("legato map returned wrong results")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("LEGATO_HOME", tempfile.mkdtemp(prefix="legato-bench-pp-"))
    os.environ["LEGATO_LOG_TO_CONSOLE"] = "0"
    bare = min(bare_seconds(args.n, args.workers) for _ in range(args.repeats))
    ours = min(legato_seconds(args.n, args.workers) for _ in range(args.repeats))
    threads = min(legato_seconds(args.n, args.workers, False) for _ in range(args.repeats))
    print(f"{args.n} trivial tasks on {args.workers} processes (pool start-up included)")
    print(f"{'':32}{'total s':>10}{'per task us':>14}")
    print(f"{'ProcessPoolExecutor.map':32}{bare:>10.3f}{bare / args.n * 1e6:>14.0f}")
    print(f"{'legato ProcessPoolTaskRunner':32}{ours:>10.3f}{ours / args.n * 1e6:>14.0f}")
    print(f"{'(legato ThreadPoolTaskRunner)':32}{threads:>10.3f}{threads / args.n * 1e6:>14.0f}")
    print(f"ratio legato / bare: {ours / bare:.2f}x")


if __name__ == "__main__":
    main()
