"""DaskTaskRunner against raw Dask on the same cluster, side by side.

1. Per-task overhead: a trivial function mapped over ``n`` items on one
   LocalCluster (``workers`` processes, one thread each), cluster start-up
   excluded, best of ``repeats``:
   - raw Dask: ``client.gather(client.map(fn, range(n), pure=False))``;
   - legato: a flow on ``DaskTaskRunner(address=...)`` running ``task.map``,
     each call replay-checked, sent, answered and recorded (SQLite).
2. Speed-up of a CPU-bound map (``cpu_items`` calls of ~``cpu_ms`` ms each)
   on DaskTaskRunner with 1, 2 and 4 worker processes.

    python benchmarks/bench_dask.py [--n 10000] [--workers 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any


def double(x: int) -> int:
    return 2 * x


def burn(ms: float) -> int:
    """Spin the CPU for about ``ms`` milliseconds."""
    end = time.process_time() + ms / 1000
    count = 0
    while time.process_time() < end:
        count += 1
    return count


def raw_seconds(client: Any, n: int) -> float:
    started = time.perf_counter()
    results = client.gather(client.map(double, range(n), pure=False))
    elapsed = time.perf_counter() - started
    if results != [2 * x for x in range(n)]:
        raise RuntimeError("raw Dask returned wrong results")
    return elapsed


def legato_seconds(address: str, n: int) -> float:
    from legato import flow, task
    from legato.task_runners import DaskTaskRunner

    doubled = task(name="double")(double)

    @flow(name="bench-dask", task_runner=DaskTaskRunner(address=address))
    def fan_out() -> list[int]:
        return doubled.map(range(n)).result()

    started = time.perf_counter()
    results = fan_out()
    elapsed = time.perf_counter() - started
    if results != [2 * x for x in range(n)]:
        raise RuntimeError("legato map returned wrong results")
    return elapsed


def cpu_seconds(workers: int, items: int, ms: float) -> float:
    import distributed

    from legato import flow, task
    from legato.task_runners import DaskTaskRunner

    burner = task(name="burn")(burn)
    with distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, dashboard_address=None
    ) as cluster:

        @flow(name="bench-dask-cpu", task_runner=DaskTaskRunner(address=cluster.scheduler_address))
        def crunch() -> int:
            return len(burner.map([ms] * items).result())

        crunch()  # warm the workers
        started = time.perf_counter()
        crunch()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpu-items", type=int, default=40)
    parser.add_argument("--cpu-ms", type=float, default=50.0)
    args = parser.parse_args()
    os.environ.setdefault("LEGATO_HOME", tempfile.mkdtemp(prefix="legato-bench-dask-"))
    os.environ["LEGATO_LOG_TO_CONSOLE"] = "0"
    import logging

    import distributed

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with (
        distributed.LocalCluster(
            n_workers=args.workers, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        raw_seconds(client, 200)  # warm up
        raw, ours = [], []
        for _ in range(args.repeats):  # alternate, so load swings hit both
            raw.append(raw_seconds(client, args.n))
            ours.append(legato_seconds(cluster.scheduler_address, args.n))
    best_raw, best_ours = min(raw), min(ours)
    print(
        f"{args.n} trivial tasks on {args.workers} Dask worker processes (best of {args.repeats})"
    )
    print(f"{'':36}{'total s':>10}{'per task us':>14}")
    print(f"{'raw Dask client.map + gather':36}{best_raw:>10.3f}{best_raw / args.n * 1e6:>14.0f}")
    print(f"{'legato DaskTaskRunner':36}{best_ours:>10.3f}{best_ours / args.n * 1e6:>14.0f}")
    print(f"ratio legato / raw Dask: {best_ours / best_raw:.2f}x", flush=True)
    print()
    print(f"CPU-bound map: {args.cpu_items} calls of ~{args.cpu_ms:.0f} ms CPU each")
    base = None
    for workers in (1, 2, 4):
        seconds = cpu_seconds(workers, args.cpu_items, args.cpu_ms)
        base = base or seconds
        print(
            f"  {workers} worker process(es): {seconds:6.2f} s  speed-up {base / seconds:4.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
