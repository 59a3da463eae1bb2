"""Core engine benchmark: per-task overhead of durable execution on SQLite.

Run:  python benchmarks/bench_core.py            (full sizes, ~1-2 minutes)
      python benchmarks/bench_core.py --quick    (smaller sizes, a smoke check)

Each workload runs in a fresh temporary LEGATO_HOME, in this process, and is
compared against the same work done as plain Python calls. Results print as
a Markdown table and are saved to benchmarks/results/core.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _fresh_home() -> None:
    os.environ["LEGATO_HOME"] = tempfile.mkdtemp(prefix="legato-bench-")
    os.environ["LEGATO_LOG_TO_CONSOLE"] = "0"
    from legato.store import reset_default_store

    reset_default_store()


def _inc(x: int) -> int:
    return x + 1


def sequential_overhead_us(n: int, *, warm: bool = False) -> float:
    """Microseconds per task of a flow calling ``n`` trivial tasks one after the
    other, minus the same loop of plain calls, in a fresh store. ``warm``: a
    one-task run creates the store (file, schema) before the clock starts;
    otherwise its creation (about 12 ms) is timed with the flow."""
    from legato import flow, task

    inc = task(_inc)

    @flow
    def sequential(n: int) -> int:
        total = 0
        for i in range(n):
            total += inc(i)
        return total

    def plain(n: int) -> int:
        total = 0
        for i in range(n):
            total += _inc(i)
        return total

    _fresh_home()
    if warm:
        sequential(1)
    t0 = time.perf_counter()
    plain(n)
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    sequential(n)
    t_flow = time.perf_counter() - t0
    return (t_flow - t_plain) / n * 1e6


def bench_sequential(n: int, repeats: int) -> dict[str, Any]:
    overheads = [sequential_overhead_us(n) for _ in range(repeats)]
    return {"per_task_us": statistics.median(overheads), "samples": overheads}


def bench_map(n: int, repeats: int) -> dict[str, Any]:
    from legato import flow, task

    inc = task(_inc)

    @flow
    def fan_out(n: int) -> int:
        return sum(f.result() for f in inc.map(range(n)))

    overheads = []
    for _ in range(repeats):
        _fresh_home()
        t0 = time.perf_counter()
        sum(_inc(i) for i in range(n))
        t_plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        fan_out(n)
        t_flow = time.perf_counter() - t0
        overheads.append((t_flow - t_plain) / n * 1e6)
    return {"per_task_us": statistics.median(overheads), "samples": overheads}


def bench_flow_runs(n: int, repeats: int) -> dict[str, Any]:
    from legato import flow, task

    inc = task(_inc)

    @flow
    def one_task(x: int) -> int:
        return inc(x)

    per_run = []
    for _ in range(repeats):
        _fresh_home()
        one_task(0)  # first call pays one-off costs (schema, pydantic model)
        t0 = time.perf_counter()
        for i in range(n):
            one_task(i)
        t_flow = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(n):
            _inc(i)
        t_plain = time.perf_counter() - t0
        per_run.append((t_flow - t_plain) / n * 1e3)
    return {"per_run_ms": statistics.median(per_run), "samples": per_run}


def bench_import(repeats: int) -> dict[str, Any]:
    def timed(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t0

    baseline = statistics.median(timed("pass") for _ in range(repeats))
    with_legato = statistics.median(timed("import legato") for _ in range(repeats))
    return {"import_ms": (with_legato - baseline) * 1e3}


_MEMORY_CHILD = """
import os, sys, tempfile, json
os.environ["LEGATO_HOME"] = tempfile.mkdtemp(prefix="legato-bench-mem-")
os.environ["LEGATO_LOG_TO_CONSOLE"] = "0"
from legato import flow, task

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0

@task
def inc(x):
    return x + 1

samples = {}

@flow
def big(n: int) -> int:
    total = 0
    for i in range(n):
        total += inc(i)
        if (i + 1) % (n // 10) == 0:
            samples[i + 1] = rss_mb()
    return total

n = int(sys.argv[1])
before = rss_mb()
big(n)
with open("/proc/self/status") as f:
    peak = next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmHWM:"))
print(json.dumps({"before_mb": before, "peak_mb": peak, "samples": samples}))
"""


def bench_memory(n: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(n)], check=True, capture_output=True, text=True
    )
    data = json.loads(out.stdout)
    samples = {int(k): v for k, v in data["samples"].items()}
    # Growth over the last 40% of the run: by then SQLite's page cache (16 MB) is
    # full, so what is left is what legato itself keeps per task.
    start, full = n * 6 // 10, n
    growth = (samples[full] - samples[start]) * 1024 * 1024 / (full - start)
    return {"peak_mb": data["peak_mb"], "growth_bytes_per_task": growth, "rss_mb": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke check")
    args = parser.parse_args()
    q = args.quick
    n_seq, n_map, n_runs, n_mem = (
        (1000, 1000, 100, 10_000) if q else (10_000, 10_000, 1000, 100_000)
    )
    repeats = 2 if q else 5

    results: dict[str, Any] = {}
    results["sequential"] = bench_sequential(n_seq, repeats)
    results["map"] = bench_map(n_map, repeats)
    results["flow_runs"] = bench_flow_runs(n_runs, 3 if not q else 1)
    results["import"] = bench_import(5 if q else 15)
    results["memory"] = bench_memory(n_mem)
    results["sizes"] = {"sequential": n_seq, "map": n_map, "flow_runs": n_runs, "memory": n_mem}
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}

    rows = [
        (
            f"{n_seq:,} sequential tasks, overhead per task",
            f"{results['sequential']['per_task_us']:.1f} µs",
            "≤ 50 µs",
        ),
        (
            f"{n_map:,}-item .map, overhead per task",
            f"{results['map']['per_task_us']:.1f} µs",
            "≤ 100 µs",
        ),
        (
            f"{n_runs:,} flow runs of one task, per run",
            f"{results['flow_runs']['per_run_ms']:.2f} ms",
            "≤ 2 ms",
        ),
        ("import legato", f"{results['import']['import_ms']:.0f} ms", "≤ 150 ms"),
        (f"peak RSS, {n_mem:,}-task flow", f"{results['memory']['peak_mb']:.0f} MB", "≤ 300 MB"),
        (
            "RSS growth per task (last 40% of that flow)",
            f"{results['memory']['growth_bytes_per_task']:.1f} B",
            "≈ 0",
        ),
    ]
    print("| workload | measured | target |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    if not q:
        out = HERE / "results" / "core.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nsaved {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
