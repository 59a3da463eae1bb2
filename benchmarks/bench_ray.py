"""RayTaskRunner against raw Ray on the same local instance, side by side.

Per-task overhead: a trivial function mapped over ``n`` items on one local Ray
instance (``cpus`` CPUs), start-up excluded, after a warm-up, best of
``repeats`` (alternating, so load swings hit both):
- raw Ray: ``ray.get([f.remote(i) for i in range(n)])``;
- legato: a flow on ``RayTaskRunner()`` (reusing the connection) running
  ``task.map``, each call replay-checked, sent, answered and recorded (SQLite).

    python benchmarks/bench_ray.py [--n 2000] [--cpus 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any


def double(x: int) -> int:
    return 2 * x


def raw_seconds(remote: Any, n: int) -> float:
    import ray

    started = time.perf_counter()
    results = ray.get([remote.remote(i) for i in range(n)])
    elapsed = time.perf_counter() - started
    if results != [2 * x for x in range(n)]:
        raise RuntimeError("raw Ray returned wrong results")
    return elapsed


def legato_seconds(n: int) -> float:
    from legato import flow, task
    from legato.task_runners import RayTaskRunner

    doubled = task(name="double")(double)

    @flow(name="bench-ray", task_runner=RayTaskRunner())
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
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("LEGATO_HOME", tempfile.mkdtemp(prefix="legato-bench-ray-"))
    os.environ["LEGATO_LOG_TO_CONSOLE"] = "0"
    import ray

    ray.init(
        num_cpus=args.cpus,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=tempfile.mkdtemp(prefix="lgray"),
    )
    try:
        remote = ray.remote(double)
        raw_seconds(remote, 200)  # warm up the workers
        legato_seconds(200)
        raw, ours = [], []
        for _ in range(args.repeats):
            raw.append(raw_seconds(remote, args.n))
            ours.append(legato_seconds(args.n))
    finally:
        ray.shutdown()
    best_raw, best_ours = min(raw), min(ours)
    print(f"{args.n} trivial tasks on a local Ray of {args.cpus} CPUs (best of {args.repeats})")
    print(f"{'':36}{'total s':>10}{'per task us':>14}")
    print(f"{'raw Ray f.remote + ray.get':36}{best_raw:>10.3f}{best_raw / args.n * 1e6:>14.0f}")
    print(f"{'legato RayTaskRunner':36}{best_ours:>10.3f}{best_ours / args.n * 1e6:>14.0f}")
    print(f"ratio legato / raw Ray: {best_ours / best_raw:.2f}x")


if __name__ == "__main__":
    main()
