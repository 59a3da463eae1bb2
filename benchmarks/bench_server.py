"""Server benchmark: the REST API and web UI of a real `legato server` process.

Run:  python benchmarks/bench_server.py                         (100,000 runs, 10,000 tasks)
      python benchmarks/bench_server.py --runs 5000 --tasks 500 (a smoke check, not saved)
      python benchmarks/bench_server.py --postgres               (runs list on PostgreSQL too)

1. Runs list: 100,000 top-level flow runs (varied states, flow names, tags,
   deployments, creation times over 90 days) are stored in a fresh SQLite
   store with ``store.create_flow_run``; then ``legato server`` is started as
   a subprocess on that store and GET /api/runs is timed over HTTP (httpx,
   one keep-alive connection) for: no filter, one state, a flow, a common and
   a rare tag, a flow and a state, a one-day time range, 20 pages deep by the
   ``next_before`` cursor, and 1,000 runs deep by ``offset``. 200 requests per
   case after 10 warm-up; p50 / p95 / max. The HTML list (GET /runs) too.
   Target: API p95 <= 100 ms.
2. Run page: a flow that maps a task over range(10,000) and reduces the
   futures in one task (10,000 dependency edges) runs through the engine
   into the same store; GET /runs/{id} (the full HTML) and GET /api/runs/{id}
   are timed, 20 requests each. When /usr/bin/chromium and playwright are
   there, headless Chromium loads the page 5 times (a fresh context each
   time): navigation start to the 'load' event, median. Target <= 1.5 s.
3. ``--postgres``: case 1 again on a throwaway PostgreSQL cluster
   (tests/postgres_server.py), the server over loopback TCP.

Results go to benchmarks/results/server.json (only with the default sizes,
or with --save).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _timing import percentiles_ms

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEFAULT_RUNS = 100_000
DEFAULT_TASKS = 10_000
WARMUP = 10
API_TARGET_MS = 100.0
PAGE_TARGET_MS = 1500.0

# The seeded history: (value, weight) pairs.
STATES = [
    ("completed", 80),
    ("failed", 10),
    ("cancelled", 3),
    ("crashed", 3),
    ("scheduled", 2),
    ("running", 1),
    ("pending", 1),
]
FLOWS = [f"flow-{i:02d}" for i in range(20)]
FLOW_WEIGHTS = [1 / (i + 1) for i in range(20)]  # a few busy flows, a long tail
TEAMS = ["team:data", "team:ml", "team:web", "team:ops", "team:finance"]
COMMON_TAG = "team:data"  # ~20% of runs
RARE_TAG = "incident"  # ~0.1% of runs
SPAN = timedelta(days=90)


# --- seeding ---------------------------------------------------------------


def seed_runs(store: Any, n: int, now: datetime) -> dict[str, Any]:
    """``n`` top-level runs, newest ``now``, oldest ``now - SPAN``, all distinct times."""
    from legato.errors import StoreError
    from legato.records import ErrorInfo, FlowRun
    from legato.states import StateType

    rng = random.Random(42)
    step_us = SPAN // timedelta(microseconds=1) // n
    states = rng.choices([s for s, _ in STATES], [w for _, w in STATES], k=n)
    flows = rng.choices(FLOWS, FLOW_WEIGHTS, k=n)
    t0 = time.perf_counter()
    for i in range(n):
        created = now - timedelta(microseconds=step_us * i + rng.randrange(step_us // 2 + 1))
        state = StateType(states[i])
        flow_name = flows[i]
        tags = ["env:prod" if rng.random() < 0.6 else "env:staging", rng.choice(TEAMS)]
        if rng.random() < 0.001:
            tags.append(RARE_TAG)
        deployed = rng.random() < 0.5
        started = state not in (StateType.SCHEDULED, StateType.PENDING)
        final = state.is_final
        start = created + timedelta(seconds=rng.uniform(0.01, 2)) if started else None
        end = start + timedelta(seconds=rng.expovariate(1 / 30)) if start and final else None
        failed = state in (StateType.FAILED, StateType.CRASHED)
        run = FlowRun(
            id=uuid.uuid4().hex,
            flow_name=flow_name,
            name=f"{flow_name}-{i}",
            state=state,
            parameters={"day": created.date().isoformat(), "batch": i % 97},
            entrypoint=f"pipelines/{flow_name}.py:{flow_name.replace('-', '_')}",
            tags=tuple(tags),
            created=created,
            start_time=start,
            end_time=end,
            attempts=1 if started else 0,
            state_message="ValueError: bad row 17" if failed else None,
            error=ErrorInfo("ValueError", "bad row 17", "Traceback ...") if failed else None,
            has_result=state is StateType.COMPLETED,
            result_serializer="json" if state is StateType.COMPLETED else None,
            deployment=f"{flow_name}-prod" if deployed else None,
            work_queue="default" if deployed else None,
            scheduled_time=created if deployed else None,
        )
        try:
            store.create_flow_run(run)
        except StoreError:  # pragma: no cover - a uuid4 collision
            continue
    seconds = time.perf_counter() - t0
    return {"runs": n, "seconds": round(seconds, 1), "per_run_us": round(seconds / n * 1e6, 1)}


# --- the server ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``python -m legato server`` on a free port, over the store in ``env``."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"server-{self.port}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "legato", "server", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet: poll again
            if time.time() > deadline:
                self.stop()
                raise RuntimeError("the server did not answer /api/health within 60 s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def server_env(home: Path, database_url: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LEGATO_DATABASE_URL", "LEGATO_API_TOKEN", "LEGATO_HOME")
    }
    env["LEGATO_HOME"] = str(home)
    env["LEGATO_LOG_TO_CONSOLE"] = "0"
    if database_url:
        env["LEGATO_DATABASE_URL"] = database_url
    return env


# --- timing ----------------------------------------------------------------


def quantiles(samples: list[float]) -> dict[str, float]:
    """Milliseconds: p50, p95 (nearest rank), max."""
    return {**percentiles_ms(samples), "requests": len(samples)}


def time_get(
    http: httpx.Client,
    path: str,
    params: Any,
    requests: int,
    warmup: int = WARMUP,
    check: Callable[[httpx.Response], None] | None = None,
) -> dict[str, Any]:
    for _ in range(warmup):
        response = http.get(path, params=params)
        response.raise_for_status()
    if check is not None:
        check(response)
    samples = []
    size = 0
    for _ in range(requests):
        t0 = time.perf_counter()
        response = http.get(path, params=params)
        samples.append(time.perf_counter() - t0)
        response.raise_for_status()
        size = len(response.content)
    return {**quantiles(samples), "bytes": size}


def _has_runs(response: httpx.Response) -> None:
    if not response.json()["runs"]:
        raise RuntimeError(f"{response.url}: no runs (the case measures nothing)")


def bench_runs_list(base_url: str, now: datetime, requests: int) -> dict[str, Any]:
    from legato.client.views import isoformat

    day_end = now - timedelta(days=30)
    mid_flow = FLOWS[5]
    cases: list[tuple[str, str, Any]] = [
        ("no filter", "/api/runs", {"limit": 50}),
        ("state=failed", "/api/runs", {"state": "failed", "limit": 50}),
        ("state=failed&state=crashed", "/api/runs", [("state", "failed"), ("state", "crashed")]),
        (f"flow={mid_flow}", "/api/runs", {"flow": mid_flow}),
        (f"flow={mid_flow}&state=failed", "/api/runs", {"flow": mid_flow, "state": "failed"}),
        (f"tag={COMMON_TAG}", "/api/runs", {"tag": COMMON_TAG}),
        (f"tag={RARE_TAG} (rare)", "/api/runs", {"tag": RARE_TAG}),
        (
            "created_after/before (one day)",
            "/api/runs",
            {
                "created_after": isoformat(day_end - timedelta(days=1)),
                "created_before": isoformat(day_end),
            },
        ),
    ]
    results: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=120) as http:
        for name, path, params in cases:
            results[name] = time_get(http, path, params, requests, check=_has_runs)
        # 20 pages deep by the cursor: follow next_before, time the 21st page.
        params = {"limit": 50}
        for _ in range(20):
            page = http.get("/api/runs", params=params).json()
            params = {"limit": 50, "created_before": page["next_before"]}
        results["cursor, 20 pages deep"] = time_get(
            http, "/api/runs", params, requests, check=_has_runs
        )
        results["offset=1000"] = time_get(
            http, "/api/runs", {"limit": 50, "offset": 1000}, requests, check=_has_runs
        )
        # The dashboard: counts by time slice and state, slowest flows (a scan of
        # the window's runs), late, crashed and running runs, workers.
        results["stats, 24 hours"] = time_get(http, "/api/stats", {"hours": 24}, requests)
        results["stats, 30 days"] = time_get(http, "/api/stats", {"hours": 720}, requests)
        results["HTML / (dashboard)"] = time_get(http, "/", None, requests)
        results["HTML /runs"] = time_get(http, "/runs", None, requests)
        results["HTML /runs?state=failed"] = time_get(http, "/runs", {"state": "failed"}, requests)
    return results


# --- the run page ----------------------------------------------------------


def run_wide_flow(n: int) -> dict[str, Any]:
    """A flow mapping a task over range(n), reduced by one task; in this process."""
    from legato import flow, task
    from legato.client import Client
    from legato.store import reset_default_store

    @task
    def square(x: int) -> int:
        return x * x

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @flow
    def wide(n: int) -> int:
        return total(square.map(range(n)))

    reset_default_store()
    client = Client()
    t0 = time.perf_counter()
    state = client.run_flow(wide, {"n": n})
    seconds = time.perf_counter() - t0
    if not state.is_completed() or state.run_id is None:
        raise RuntimeError(f"the {n}-task flow ended {state.type}: {state.message}")
    if state.result() != sum(i * i for i in range(n)):
        raise RuntimeError("the wide flow returned a wrong sum")
    reset_default_store()
    return {"run_id": state.run_id, "tasks": n + 1, "flow_seconds": round(seconds, 2)}


def bench_run_page(base_url: str, run_id: str, requests: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=120) as http:

        def check_api(response: httpx.Response) -> None:
            if len(response.json()["task_runs"]) < 2:
                raise RuntimeError("the run has no task runs")

        results["HTML /runs/{id}"] = time_get(http, f"/runs/{run_id}", None, requests, warmup=2)
        results["API /api/runs/{id}"] = time_get(
            http, f"/api/runs/{run_id}", None, requests, warmup=2, check=check_api
        )
    return results


def browser_load(url: str, times: int = 5) -> dict[str, Any] | str:
    """Headless Chromium: navigation start to the load event, fresh context each time."""
    if not os.path.exists(CHROMIUM):
        return f"skipped: no {CHROMIUM}"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "skipped: no playwright package"
    script = """() => {
        const e = performance.getEntriesByType('navigation')[0];
        return [e.responseEnd - e.startTime, e.domContentLoadedEventEnd - e.startTime,
                e.loadEventEnd - e.startTime];
    }"""
    samples: list[list[float]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for i in range(times + 1):  # the first is a warm-up
                context = browser.new_context()
                page = context.new_page()
                page.goto(url, wait_until="load", timeout=120_000)
                if i:
                    samples.append(page.evaluate(script))
                context.close()
        finally:
            browser.close()
    return {
        "response_end_ms": round(statistics.median(s[0] for s in samples), 1),
        "dom_content_loaded_ms": round(statistics.median(s[1] for s in samples), 1),
        "load_ms": round(statistics.median(s[2] for s in samples), 1),
        "load_samples_ms": [round(s[2], 1) for s in samples],
    }


# --- main ------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # no /proc (not Linux): the model stays unknown
    memory = ""
    try:
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass  # likewise for the memory size
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "memory": memory,
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


def sqlite_case(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from legato.store import open_store, reset_default_store

    home = workdir / "sqlite"
    home.mkdir()
    os.environ.update(LEGATO_HOME=str(home), LEGATO_LOG_TO_CONSOLE="0")
    os.environ.pop("LEGATO_DATABASE_URL", None)
    reset_default_store()
    now = datetime.now(UTC) - timedelta(minutes=1)
    store = open_store()
    print(f"sqlite: storing {args.runs:,} runs ...", flush=True)
    try:
        seeding = seed_runs(store, args.runs, now)
    finally:
        store.close()
    print(f"sqlite: running a flow of {args.tasks:,} tasks ...", flush=True)
    wide = run_wide_flow(args.tasks)
    out: dict[str, Any] = {"seeding": seeding, "wide_flow": wide}
    server = Server(server_env(home, None), workdir)
    try:
        print("sqlite: timing the runs list ...", flush=True)
        out["runs_list"] = bench_runs_list(server.url, now, args.requests)
        print("sqlite: timing the run page ...", flush=True)
        out["run_page"] = bench_run_page(server.url, wide["run_id"], args.page_requests)
        if not args.no_browser:
            print("sqlite: loading the run page in Chromium ...", flush=True)
            out["run_page"]["browser"] = browser_load(f"{server.url}/runs/{wide['run_id']}")
    finally:
        server.stop()
    return out


def postgres_case(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    sys.path.insert(0, str(HERE.parent / "tests"))
    import postgres_server
    from legato.store import open_store

    pg = postgres_server.get_server()
    try:
        url = pg.create_database()
        now = datetime.now(UTC) - timedelta(minutes=1)
        store = open_store(url)
        print(f"postgres: storing {args.runs:,} runs ...", flush=True)
        try:
            seeding = seed_runs(store, args.runs, now)
        finally:
            store.close()
        home = workdir / "pg-home"
        home.mkdir()
        server = Server(server_env(home, url), workdir)
        try:
            print("postgres: timing the runs list ...", flush=True)
            runs_list = bench_runs_list(server.url, now, args.requests)
        finally:
            server.stop()
    finally:
        postgres_server.stop_server()
    return {
        "seeding": seeding,
        "runs_list": runs_list,
        "server": "LEGATO_TEST_DATABASE_URL" if pg.cluster is None else "throwaway",
    }


def print_summary(results: dict[str, Any]) -> None:
    for backend in ("sqlite", "postgres"):
        if backend not in results:
            continue
        r = results[backend]
        print(f"\n{backend}: {r['seeding']['runs']:,} runs stored in {r['seeding']['seconds']} s")
        print("| GET | p50 | p95 | max | target |")
        print("|---|---|---|---|---|")
        for name, q in r["runs_list"].items():
            # The target is the runs list's; the dashboard and pages are shown for reference.
            listed = not name.startswith(("HTML", "stats"))
            target = f"p95 ≤ {API_TARGET_MS:.0f} ms" if listed else ""
            if target and q["p95_ms"] > API_TARGET_MS:
                target += " — **missed**"
            print(f"| {name} | {q['p50_ms']} | {q['p95_ms']} | {q['max_ms']} ms | {target} |")
        if "run_page" in r:
            page = r["run_page"]
            tasks = r["wide_flow"]["tasks"]
            print(
                f"\nrun page, a run of {tasks:,} tasks (ran in {r['wide_flow']['flow_seconds']} s)"
            )
            print("| GET | p50 | p95 | max | size |")
            print("|---|---|---|---|---|")
            for name in ("HTML /runs/{id}", "API /api/runs/{id}"):
                q = page[name]
                print(
                    f"| {name} | {q['p50_ms']} | {q['p95_ms']} | {q['max_ms']} ms "
                    f"| {q['bytes'] / 1024:,.0f} KiB |"
                )
            browser = page.get("browser")
            if isinstance(browser, dict):
                print(
                    f"Chromium, navigation start → load (median of 5): {browser['load_ms']} ms "
                    f"(response end {browser['response_end_ms']} ms, DOMContentLoaded "
                    f"{browser['dom_content_loaded_ms']} ms; target ≤ {PAGE_TARGET_MS:.0f} ms)"
                )
            elif browser:
                print(f"Chromium: {browser}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs stored (100,000)")
    parser.add_argument("--tasks", type=int, default=DEFAULT_TASKS, help="tasks of the big run")
    parser.add_argument("--requests", type=int, default=200, help="requests per list case")
    parser.add_argument("--page-requests", type=int, default=20, help="requests of the run page")
    parser.add_argument("--postgres", action="store_true", help="the runs list on PostgreSQL too")
    parser.add_argument("--no-browser", action="store_true", help="skip headless Chromium")
    parser.add_argument("--save", action="store_true", help="save results with non-default sizes")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="legato-bench-server-"))
    try:
        results: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "sizes": {"runs": args.runs, "tasks": args.tasks, "requests": args.requests},
            "sqlite": sqlite_case(args, workdir),
        }
        if args.postgres:
            results["postgres"] = postgres_case(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_summary(results)
    if args.save or (args.runs == DEFAULT_RUNS and args.tasks == DEFAULT_TASKS):
        out = HERE / "results" / "server.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nsaved {out.relative_to(HERE.parent)}")
    else:
        print("\nnot saved (non-default sizes; --save to save anyway)")


if __name__ == "__main__":
    main()
