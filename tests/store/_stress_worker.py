"""A separate process hammering one store (used by test_sqlite.py and test_postgres.py).

    python _stress_worker.py DB_PATH_OR_URL writer|reader START_AT SECONDS

Waits until the wall clock reaches START_AT so that all workers overlap,
works for SECONDS, then prints a JSON summary on stdout. Any exception ends
the process with a traceback on stderr and a non-zero exit code.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import sys
import time
import uuid
from datetime import UTC, datetime

from legato.records import FlowRun, LogRecord, RunOwner, StoredResult, TaskRun
from legato.states import StateType
from legato.store import open_store
from legato.store.base import Store

TASKS_PER_RUN = 3


def now() -> datetime:
    return datetime.now(UTC)


def write(store: Store, seconds: float) -> dict[str, object]:
    run_ids: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = FlowRun(
            id=uuid.uuid4().hex,
            flow_name="stress",
            name=f"stress-{os.getpid()}-{len(run_ids)}",
            state=StateType.PENDING,
            parameters={"pid": os.getpid()},
        )
        store.create_flow_run(run)
        owner = RunOwner(token=uuid.uuid4().hex, host=socket.gethostname(), pid=os.getpid())
        started = store.start_flow_run(run.id, owner, from_states=[StateType.PENDING], now=now())
        if started is None:
            raise RuntimeError(f"could not start {run.id}")
        for index in range(TASKS_PER_RUN):
            task = TaskRun(
                id=uuid.uuid4().hex,
                flow_run_id=run.id,
                call_key=f"step[{index}]",
                task_name="step",
                name=f"step-{index}",
                state=StateType.COMPLETED,
                attempts=1,
                start_time=now(),
                end_time=now(),
            )
            log = LogRecord(
                flow_run_id=run.id,
                timestamp=now(),
                level=20,
                message=f"step {index} done",
                task_run_id=task.id,
            )
            store.record_task_run(
                task, owner.token, result=StoredResult("pickle", pickle.dumps(index)), logs=[log]
            )
        store.heartbeat_flow_run(run.id, owner.token, now())
        end_log = LogRecord(flow_run_id=run.id, timestamp=now(), level=20, message="run done")
        store.finish_flow_run(
            run.id, owner.token, state=StateType.COMPLETED, now=now(), logs=[end_log]
        )
        run_ids.append(run.id)
    return {"runs": run_ids}


def read(store: Store, seconds: float) -> dict[str, object]:
    reads = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for run in store.list_flow_runs(limit=10):
            store.get_flow_run(run.id)
            store.list_task_runs(run.id)
            store.count_task_runs(run.id)
            store.read_logs(run.id)
            store.match_run_ids(run.id[:4], limit=5)
            reads += 6
        reads += 1
    return {"reads": reads}


def main() -> None:
    path, role, start_at, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    store = open_store(path)
    try:
        time.sleep(max(0.0, start_at - time.time()))
        summary = write(store, seconds) if role == "writer" else read(store, seconds)
    finally:
        store.close()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
