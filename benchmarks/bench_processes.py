"""Many processes, one store: total task throughput, and whether any process failed.

Run:  python benchmarks/bench_processes.py                     (SQLite and PostgreSQL)
      python benchmarks/bench_processes.py --backend sqlite --quick

Starts N real processes at the same moment; each runs R flow runs of T
trivial tasks against one store (one SQLite file, or one PostgreSQL database
on a throwaway cluster from tests/postgres_server.py). Reports tasks per
second over the whole wall time, and every process that exited non-zero or
printed "locked". Results go to benchmarks/results/processes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

_WORKER = """
import json, os, sys, time
from legato import flow, task

@task
def step(x: int) -> int:
    return x + 1

@flow
def work(n: int) -> int:
    return sum(step(i) for i in range(n))

runs, tasks, start_at = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
time.sleep(max(0.0, start_at - time.time()))
failed = 0
for _ in range(runs):
    if not work(tasks, return_state=True).is_completed():
        failed += 1
print(json.dumps({"failed_runs": failed}))
"""


def run_processes(env: dict[str, str], processes: int, runs: int, tasks: int) -> dict[str, Any]:
    start_at = time.time() + 2.0  # every process imported legato by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(runs), str(tasks), str(start_at)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    failures = []
    failed_runs = 0
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0 or "locked" in err.lower():
            failures.append({"code": proc.returncode, "stderr": err[-500:]})
        else:
            failed_runs += json.loads(out.strip().splitlines()[-1])["failed_runs"]
    wall = time.time() - start_at
    total = processes * runs * tasks
    return {
        "processes": processes,
        "flow_runs": processes * runs,
        "tasks": total,
        "wall_seconds": round(wall, 2),
        "tasks_per_second": round(total / wall),
        "failed_processes": failures,
        "failed_runs": failed_runs,
    }


def sqlite_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LEGATO_DATABASE_URL", None)
    env["LEGATO_HOME"] = tempfile.mkdtemp(prefix="legato-bench-procs-")
    env["LEGATO_LOG_TO_CONSOLE"] = "0"
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="fewer runs, for a smoke check")
    args = parser.parse_args()
    runs, tasks = (5, 20) if args.quick else (25, 40)

    results: dict[str, Any] = {}
    if args.backend in ("sqlite", "both"):
        results["sqlite"] = run_processes(sqlite_env(), args.processes, runs, tasks)
    if args.backend in ("postgres", "both"):
        sys.path.insert(0, str(HERE.parent / "tests"))
        import postgres_server

        server = postgres_server.get_server()
        try:
            url = server.create_database()
            env = dict(os.environ, LEGATO_DATABASE_URL=url, LEGATO_LOG_TO_CONSOLE="0")
            results["postgres"] = run_processes(env, args.processes, runs, tasks)
        finally:
            server.stop()

    print("| store | processes | flow runs | tasks | wall | tasks/s | failures |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        failures = len(r["failed_processes"]) + r["failed_runs"]
        print(
            f"| {name} | {r['processes']} | {r['flow_runs']:,} | {r['tasks']:,} | "
            f"{r['wall_seconds']} s | {r['tasks_per_second']:,} | {failures} |"
        )
    if not args.quick:
        out = HERE / "results" / "processes.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nsaved {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
