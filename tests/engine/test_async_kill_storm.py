"""The issue's reproduction: an async flow of 6 branches x 12 fetch->process steps
under asyncio.gather, SIGKILLed at random moments and resumed until it completes.

Before call-key branch scopes it ended completed with results mixed across
branches and steps never executed. Now every branch must hold its own values,
every step must have run, and a step whose record was committed never runs again.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

from _engine_support import subprocess_env

from legato.client import Client
from legato.states import StateType
from legato.store.base import Store

BRANCHES, STEPS = 6, 12

FLOW = (
    textwrap.dedent(
        """
    import asyncio, os
    from legato import flow, get_run_context, task

    def effect(kind, value):
        with open(os.environ["EFFECTS"], "a") as f:
            f.write(f"{kind} {value} {get_run_context().idempotency_key}\\n")

    @task
    async def fetch(branch: int, step: int) -> int:
        effect("fetch", f"{branch}.{step}")
        await asyncio.sleep(0.001 * ((branch * 7 + step * 3) % 5))
        return branch * 100 + step

    @task
    async def process(value: int) -> str:
        effect("process", value)
        await asyncio.sleep(0.001 * (value % 3))
        return f"b{value // 100}s{value % 100}"

    async def branch(b: int) -> list[str]:
        return [await process(await fetch(b, s)) for s in range(STEPS_)]

    @flow
    async def storm() -> list[list[str]]:
        return list(await asyncio.gather(*(branch(b) for b in range(BRANCHES_))))
    """
    )
    .replace("STEPS_", str(STEPS))
    .replace("BRANCHES_", str(BRANCHES))
)


def test_an_async_gather_flow_killed_repeatedly_resumes_to_the_right_results(
    tmp_path: Path, default_store: Store
) -> None:
    script = tmp_path / "storm.py"
    script.write_text(FLOW)
    effects = tmp_path / "effects.txt"
    rng = random.Random(20261130)
    env = {"EFFECTS": str(effects), "LEGATO_ARGS_FINGERPRINT": "1"}
    home = Path(os.environ["LEGATO_HOME"])

    def legato(*args: str, faults: str = "") -> subprocess.CompletedProcess[str]:
        extra = dict(env, LEGATO_FAULTS=faults) if faults else env
        return subprocess.run(
            [sys.executable, "-m", "legato", *args, "--json"],
            env=subprocess_env(home, **extra) | _store_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    total = 2 * BRANCHES * STEPS
    done = legato("run", f"{script}:storm", faults=f"kill-after=#{rng.randint(1, 30)}")
    assert done.returncode == -signal.SIGKILL, done.stderr
    run = default_store.list_flow_runs(flow_name="storm", limit=1)[0]
    kills = 1
    while True:
        recorded = sum(t.state is StateType.COMPLETED for t in default_store.list_task_runs(run.id))
        left = total - recorded
        faults = f"kill-after=#{rng.randint(1, max(1, left // 2))}" if kills < 6 else ""
        done = legato("resume", run.id, faults=faults)
        if done.returncode == 0:
            break
        assert done.returncode == -signal.SIGKILL, done.stderr
        kills += 1
    assert kills == 6
    final = Client(default_store).get_run(run.id)
    assert final.state is StateType.COMPLETED
    expected = [[f"b{b}s{s}" for s in range(STEPS)] for b in range(BRANCHES)]
    assert Client(default_store).run_result(run.id) == expected
    counts = Counter(
        line.split()[0] + " " + line.split()[1] for line in effects.read_text().splitlines()
    )
    # Every step ran; at most the calls in flight at each kill ran twice.
    assert len(counts) == total
    repeated = sum(n - 1 for n in counts.values())
    assert repeated <= kills * BRANCHES, counts


def _store_env() -> dict[str, str]:
    url = os.environ.get("LEGATO_DATABASE_URL")
    return {"LEGATO_DATABASE_URL": url} if url else {}
