"""Workers: scheduling latency, and how fast workers drain a queue.

Run:  python benchmarks/bench_workers.py                     (SQLite and PostgreSQL)
      python benchmarks/bench_workers.py --backend sqlite --quick

Latency: one idle `legato worker`; a run is triggered (or falls due on a
one-second schedule) and its first task writes the time it started. We
report, over many runs, the time from the trigger call (or from the run's
scheduled time) to that first task starting: p50 and p95. Throughput: 1,000
queued runs of a one-task flow drained by 4 workers; runs per second from
the workers' start to the last run's end. PostgreSQL runs on a throwaway
cluster from tests/postgres_server.py over loopback. Results go to
benchmarks/results/workers.json.

``--baseline REF`` also drains with the worker package (src/legato/worker)
as it is in git revision REF, the rest of legato as it is now, alternating
with the current code ``--repeat`` times (default 3): before and after side
by side in one run, as a median and a range.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _timing import percentiles_ms

HERE = Path(__file__).resolve().parent

FLOWS = """
import os, time
from legato import flow, task, get_run_context


@task
def first(tag: str) -> str:
    with open(os.environ["BENCH_STARTS"], "a") as f:
        f.write(f"{get_run_context().flow_run_id} {time.time()!r}\\n")
    return tag


@flow
def bench(tag: str = "") -> str:
    return first(tag)
"""


def _starts(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    found = {}
    for line in path.read_text().splitlines():
        run_id, stamp = line.split()
        found[run_id] = float(stamp)
    return found


def _workers(env: dict[str, str], count: int, *args: str) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "legato", "worker", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(60)


def _wait_for(starts: Path, count: int, timeout: float) -> dict[str, float]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = _starts(starts)
        if len(found) >= count:
            return found
        time.sleep(0.01)
    raise RuntimeError(f"only {len(_starts(starts))} of {count} runs started in {timeout}s")


def _quantiles(values: list[float]) -> dict[str, float]:
    found = percentiles_ms(values)
    return {"p50_ms": found["p50_ms"], "p95_ms": found["p95_ms"], "runs": len(values)}


def baseline_tree(ref: str) -> str:
    """A copy of src/ whose worker package is the one of git revision ``ref``."""
    import shutil

    root = HERE.parent
    tree = Path(tempfile.mkdtemp(prefix="legato-bench-baseline-"))
    shutil.copytree(root / "src" / "legato", tree / "legato")
    worker = tree / "legato" / "worker"
    shutil.rmtree(worker)
    worker.mkdir()
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{ref}:src/legato/worker"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in names:
        if name.endswith(".py"):
            source = subprocess.run(
                ["git", "show", f"{ref}:src/legato/worker/{name}"],
                cwd=root,
                capture_output=True,
                check=True,
            ).stdout
            (worker / name).write_bytes(source)
    return str(tree)


def drain(client: Any, env: dict[str, str], starts: Path, runs: int) -> float:
    """Queue ``runs`` runs, drain them with 4 workers: runs per second."""
    if starts.exists():
        starts.unlink()
    for n in range(runs):
        client.trigger("bench", {"tag": f"d{n}"})
    t0 = time.time()
    procs = _workers(env, 4, "--no-scheduler")
    _wait_for(starts, runs, 600)
    while any(
        r.state.value in ("scheduled", "pending", "running")
        for r in client.list_runs(deployment="bench", limit=runs + 10)
    ):
        time.sleep(0.05)
    wall = time.time() - t0
    _stop(procs)
    return runs / wall


def measure(
    env: dict[str, str],
    workdir: Path,
    triggers: int,
    drain_runs: int,
    baseline: str | None = None,
    repeat: int = 1,
) -> dict[str, Any]:
    flows = workdir / "bench_flows.py"
    flows.write_text(FLOWS)
    starts = workdir / "starts.txt"
    env = dict(env, BENCH_STARTS=str(starts), LEGATO_LOG_TO_CONSOLE="0")
    os.environ.update(env)
    from legato.client import Client
    from legato.schedules import make_schedule
    from legato.store import reset_default_store

    reset_default_store()
    client = Client()
    client.deploy(f"{flows}:bench", name="bench")
    results: dict[str, Any] = {}

    # Trigger -> first task, one idle worker.
    procs = _workers(env, 1)
    time.sleep(3)  # the worker and its fork server are up
    latencies = []
    for n in range(triggers):
        t0 = time.time()
        run = client.trigger("bench", {"tag": f"t{n}"})
        found = _wait_for(starts, n + 1, 30)
        latencies.append(found[run.id] - t0)
        time.sleep(0.05)
    results["trigger_to_first_task"] = _quantiles(latencies)

    # Due time -> first task, a one-second schedule.
    before = set(_starts(starts))
    client.deploy(f"{flows}:bench", name="tick", schedules=[make_schedule(interval=1)])
    time.sleep(min(20, triggers / 2) + 2)
    client.pause_deployment("tick")
    time.sleep(2)
    _stop(procs)
    due = []
    found = _starts(starts)
    for run in client.list_runs(deployment="tick", limit=1000):
        if run.id in found and run.id not in before and run.scheduled_time is not None:
            due.append(found[run.id] - run.scheduled_time.timestamp())
    results["due_to_first_task"] = _quantiles(due)

    # Drain: 1,000 queued runs, 4 workers; with a baseline, A/B alternately.
    variants = {"drain": env}
    if baseline is not None:
        old_path = os.pathsep.join(p for p in (baseline, env.get("PYTHONPATH")) if p)
        variants = {"drain_baseline": dict(env, PYTHONPATH=old_path), "drain": env}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, variant in variants.items():
            rates[name].append(drain(client, variant, starts, drain_runs))
    for name, found in rates.items():
        ordered = sorted(found)
        results[name] = {
            "runs": drain_runs,
            "workers": 4,
            "runs_per_second": round(ordered[len(ordered) // 2], 1),
            "samples": [round(r, 1) for r in found],
        }
    client.store.close()
    reset_default_store()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="fewer runs, for a smoke check")
    parser.add_argument("--baseline", metavar="REF", help="also drain with the worker of REF")
    parser.add_argument("--repeat", type=int, help="drains per variant (default 3 with --baseline)")
    args = parser.parse_args()
    baseline = baseline_tree(args.baseline) if args.baseline else None
    repeat = args.repeat or (3 if baseline else 1)
    triggers, drain_runs = (10, 100) if args.quick else (50, 1000)

    results: dict[str, Any] = {}
    if args.backend in ("sqlite", "both"):
        env = {k: v for k, v in os.environ.items() if k != "LEGATO_DATABASE_URL"}
        home = tempfile.mkdtemp(prefix="legato-bench-workers-")
        env["LEGATO_HOME"] = home
        results["sqlite"] = measure(env, Path(home), triggers, drain_runs, baseline, repeat)
    if args.backend in ("postgres", "both"):
        sys.path.insert(0, str(HERE.parent / "tests"))
        import postgres_server

        server = postgres_server.get_server()
        try:
            url = server.create_database()
            workdir = Path(tempfile.mkdtemp(prefix="legato-bench-workers-pg-"))
            env = dict(os.environ, LEGATO_DATABASE_URL=url)
            results["postgres"] = measure(env, workdir, triggers, drain_runs, baseline, repeat)
        finally:
            server.stop()

    print("| store | trigger → first task p50 / p95 | due → first task p50 / p95 | drain |")
    print("|---|---|---|---|")
    for name, r in results.items():
        t, d = r["trigger_to_first_task"], r["due_to_first_task"]
        rows = [(name, "drain")]
        if "drain_baseline" in r:
            rows.insert(0, (f"{name}, worker of {args.baseline}", "drain_baseline"))
        for label, key in rows:
            dr = r[key]
            spread = ""
            if len(dr["samples"]) > 1:
                spread = f" ({min(dr['samples'])} to {max(dr['samples'])})"
            latency = (
                f"{t['p50_ms']} / {t['p95_ms']} ms | {d['p50_ms']} / {d['p95_ms']} ms"
                if key == "drain"
                else "- | -"
            )
            print(
                f"| {label} | {latency} | {dr['runs']:,} runs, {dr['workers']} workers: "
                f"{dr['runs_per_second']} runs/s{spread} |"
            )
    if not args.quick:
        out = HERE / "results" / "workers.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nsaved {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
