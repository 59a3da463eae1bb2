"""Representative flows for the crash matrix (tests/engine/test_crash_matrix.py).

Not a test module: the matrix runs these flows in subprocesses
(``legato run tests/engine/_crash_flows.py:FLOW``, ``legato resume``, or a
``legato worker``) with ``LEGATO_FAULTS`` set, so they import nothing from the
tests. Every task execution that succeeds appends ``KEY IDEMPOTENCY_KEY`` to the
file named by ``$SIDE_EFFECTS`` (a rollback hook appends ``undo KEY IDEMPOTENCY_KEY``);
``$MARKERS`` is a folder of marker files that make "fail once" deterministic
across processes.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import legato
from legato import State, ThreadPoolTaskRunner, flow, get_run_context, pause_flow_run, task
from legato.input import RunInput
from legato.records import TaskRun


def side_effect() -> None:
    """Append this task call's side-effect line (its key and idempotency key)."""
    ctx = get_run_context()
    with open(os.environ["SIDE_EFFECTS"], "a", encoding="utf-8") as f:
        f.write(f"{ctx.call_key} {ctx.idempotency_key}\n")


def first_time(name: str) -> bool:
    """True the first time ``name`` is asked about in this test (any process)."""
    marker = Path(os.environ["MARKERS"]) / name.replace("/", "_")
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


@task
def step(x: Any) -> Any:
    side_effect()
    return x


# (a) sequential tasks ---------------------------------------------------------------


@flow
def sequential(n: int = 3) -> int:
    total = 0
    for i in range(n):
        total = step(total + i)
    return total


# (b) .map with a task that fails once per key, then succeeds --------------------------


@task(retries=1)
def flaky(i: int) -> int:
    if first_time(f"flaky-{get_run_context().idempotency_key}"):
        raise RuntimeError(f"flaky({i}) fails once")
    side_effect()
    return i * i


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def mapped(n: int = 4) -> list[int]:
    return [future.result() for future in flaky.map(range(n))]


# (c) subflows ---------------------------------------------------------------------------


@flow
def child(base: int, n: int) -> int:
    return sum(step(base + i) for i in range(n))


@flow
def parent() -> list[int]:
    return [step(1), child(10, 2), child(20, 1)]


# (d) an async flow gathering branches of fetch(i) -> process(i) -----------------------


@task
async def fetch(i: int) -> int:
    # Later branches finish first, so completion order is not call order.
    await asyncio.sleep(0.01 * (3 - i))
    side_effect()
    return i * 10


@task
async def process(i: int, value: int) -> str:
    side_effect()
    return f"processed {i}:{value}"


async def branch(i: int) -> str:
    return await process(i, await fetch(i))


@flow
async def gathered(n: int = 3) -> list[str]:
    return list(await asyncio.gather(*(branch(i) for i in range(n))))


# (e) a transaction whose failure is compensated --------------------------------------


def undo(t: Any, task_run: TaskRun, state: State) -> None:
    with open(os.environ["SIDE_EFFECTS"], "a", encoding="utf-8") as f:
        f.write(f"undo {task_run.call_key} {task_run.flow_run_id}/{task_run.call_key}\n")


@task(on_rollback=[undo])
def reserve(item: str) -> str:
    side_effect()
    return f"reserved {item}"


@task(on_rollback=[undo])
def charge(item: str) -> str:
    side_effect()
    return f"charged {item}"


@task
def ship(item: str) -> str:
    if item == "broken":
        raise RuntimeError(f"no carrier takes {item}")  # always: the path is deterministic
    side_effect()
    return f"shipped {item}"


@flow
def saga() -> str:
    try:
        with legato.transaction():
            reserve("parcel")
            charge("parcel")
            outcome = ship("broken")
    except RuntimeError:
        outcome = "rolled back"
    return step(outcome)


# (f) a pause for input -------------------------------------------------------------------


class Approval(RunInput):
    ok: bool


@flow
def approval() -> str:
    first = step("a") + step("b")
    answer = pause_flow_run(wait_for_input=Approval)
    return f"{first}:{step('yes' if answer.ok else 'no')}"


# (g) a flow retry under a worker ----------------------------------------------------------


@flow(retries=1, retry_delay_seconds=1.5)
def retrying() -> list[str]:
    before = step("a")
    if first_time(f"retrying-{get_run_context().flow_run_id}"):
        raise RuntimeError("the first attempt fails after its first task")
    return [before, step("b"), step("c")]


# A task that holds its run until the test releases it (tests/engine/test_faults.py) ----


@task
def hold() -> str:
    side_effect()
    release = Path(os.environ["MARKERS"]) / "release"
    deadline = time.monotonic() + 60
    while not release.exists():  # the test creates it, or kills this process
        if time.monotonic() > deadline:
            raise TimeoutError("nobody released hold() within 60 s")
        time.sleep(0.02)
    return "released"


@flow
def held() -> str:
    return hold()
