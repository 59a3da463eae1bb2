"""Claim scaling on one PostgreSQL server: claims per second by 1 to 16 processes.

Run:  python benchmarks/bench_claims.py             (1, 2, 4, 8, 16 processes)
      python benchmarks/bench_claims.py --quick     (1, 2, 4 processes, shorter)

What a worker does per run minus the run itself: claim a queued run
(`Store.claim_flow_run`: the pick with FOR UPDATE SKIP LOCKED and the take,
one transaction) and mark it done (`Store.transition_flow_run` to
completed, fenced on the claim's token). N processes do that in a loop for
the same few seconds against one queue of runs queued beforehand; we report
claims per second in total and per process, and check that no run was
claimed twice. PostgreSQL is a throwaway cluster from tests/postgres_server.py
on 127.0.0.1 (fsync off, data in memory), reached over loopback TCP, on the
same machine as the claimers. Results go to benchmarks/results/claims.json.
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


def _claimer(seconds: float) -> None:
    """One claiming process: once connected, says so, reads the common start time
    (an epoch second) on stdin, then claims and completes runs for ``seconds``."""
    from legato.engine.ids import new_id
    from legato.engine.liveness import current_owner
    from legato.states import StateType
    from legato.store import get_default_store

    store = get_default_store()
    store.get_flow_run("warm-up")  # connected before the clock starts
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    claimed: list[str] = []
    while time.time() < start:
        time.sleep(0.001)
    end = start + seconds
    while time.time() < end:
        token = new_id()
        run = store.claim_flow_run(
            ("default",), current_owner(token), now=store.clock(), lease_seconds=300
        )
        if run is None:
            raise SystemExit("the queue ran dry: queue more runs (--runs)")
        store.transition_flow_run(
            run.id,
            to_state=StateType.COMPLETED,
            from_states=[StateType.PENDING],
            now=store.clock(),
            expected_owner_token=token,
        )
        claimed.append(run.id)
    print(json.dumps(claimed))


def _queue(count: int) -> None:
    from legato.engine.ids import new_id
    from legato.records import FlowRun, utcnow
    from legato.states import StateType
    from legato.store import get_default_store

    store = get_default_store()
    for _ in range(count):
        now = utcnow()
        run_id = new_id()
        store.create_flow_run(
            FlowRun(
                id=run_id,
                flow_name="claimed",
                name=f"claimed-{run_id[:8]}",
                state=StateType.SCHEDULED,
                parameters={},
                created=now,
                work_queue="default",
                scheduled_time=now,
            )
        )


def measure(url: str, processes: int, seconds: float) -> dict[str, Any]:
    env = dict(os.environ, LEGATO_DATABASE_URL=url, LEGATO_LOG_TO_CONSOLE="0")
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--claimer", repr(seconds)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for proc in procs:  # every process imported and connected, however loaded the machine
        if proc.stdout is None or proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a claiming process failed to start")
    start = f"{time.time() + 0.2!r}\n"
    for proc in procs:
        if proc.stdin is None:
            raise RuntimeError("a claiming process has no stdin")
        proc.stdin.write(start)
        proc.stdin.flush()
    claimed: list[str] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"a claiming process failed (exit {proc.returncode})")
        claimed.extend(json.loads(out))
    if len(set(claimed)) != len(claimed):
        raise RuntimeError("a run was claimed twice")
    total = len(claimed) / seconds
    return {
        "processes": processes,
        "claims": len(claimed),
        "claims_per_second": round(total, 1),
        "per_process": round(total / processes, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer levels, shorter")
    parser.add_argument("--claimer", type=float, metavar="SECONDS", help=argparse.SUPPRESS)
    parser.add_argument("--queue", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--name", default="claims", help="results file: results/NAME.json")
    parser.add_argument("--runs", type=int, default=3_000, help="runs queued per level")
    parser.add_argument("--seconds", type=float, default=3.0, help="claiming time per level")
    args = parser.parse_args()
    if args.claimer:
        _claimer(args.claimer)
        return
    if args.queue:
        _queue(args.queue)
        return
    levels = [1, 2, 4] if args.quick else [1, 2, 4, 8, 16]
    seconds = args.seconds / 2 if args.quick else args.seconds
    runs = args.runs // 2 if args.quick else args.runs

    sys.path.insert(0, str(HERE.parent / "tests"))
    import postgres_server

    server = postgres_server.get_server()
    results = []
    try:
        for processes in levels:
            url = server.create_database()
            env = dict(os.environ, LEGATO_DATABASE_URL=url, LEGATO_LOG_TO_CONSOLE="0")
            env["LEGATO_HOME"] = tempfile.mkdtemp(prefix="legato-bench-claims-")
            fillers = [
                subprocess.Popen([sys.executable, __file__, "--queue", str(runs // 4)], env=env)
                for _ in range(4)
            ]
            for filler in fillers:
                if filler.wait(600) != 0:
                    raise RuntimeError("queueing the runs failed")
            results.append({**measure(url, processes, seconds), "queued": runs})
            server.drop_database(url)
            print(results[-1], flush=True)
    finally:
        server.stop()

    print()
    print("| claiming processes | runs queued at the start | claims/s in total | per process |")
    print("|---|---|---|---|")
    for r in results:
        print(
            f"| {r['processes']} | {r['queued']:,} | {r['claims_per_second']:,} | "
            f"{r['per_process']:,} |"
        )
    if not args.quick:
        out = HERE / "results" / f"{args.name}.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps({"postgres": results}, indent=2) + "\n")
        print(f"\nsaved {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
