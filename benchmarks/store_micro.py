"""Micro-benchmark of the SQLite store's hot paths.

Prints microseconds per call of ``record_task_run`` (a new COMPLETED task run
with a small pickled result and no logs, the engine's per-task write) and of
``get_flow_run``, over 10,000 calls each on a temporary database file.

    python benchmarks/store_micro.py [--calls N]
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from legato.records import FlowRun, RunOwner, StoredResult, TaskRun
from legato.states import StateType
from legato.store.sqlite import SQLiteStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    calls = parser.parse_args().calls

    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(Path(folder) / "bench.db")
        try:
            now = datetime.now(UTC)
            run = FlowRun(
                id=uuid.uuid4().hex,
                flow_name="bench",
                name="bench-run",
                state=StateType.PENDING,
                parameters={"n": calls},
            )
            store.create_flow_run(run)
            owner = RunOwner(token=uuid.uuid4().hex, host="localhost", pid=1)
            store.start_flow_run(run.id, owner, from_states=[StateType.PENDING], now=now)
            result = StoredResult("pickle", pickle.dumps({"value": 42, "items": [1, 2, 3]}))
            # Built up front: the benchmark measures the store, not record building.
            task_runs = [
                TaskRun(
                    id=uuid.uuid4().hex,
                    flow_run_id=run.id,
                    call_key=f"add[{i}]",
                    task_name="add",
                    name=f"add-{i}",
                    state=StateType.COMPLETED,
                    attempts=1,
                    start_time=now,
                    end_time=now,
                    result_serializer="pickle",
                    has_result=True,
                )
                for i in range(calls)
            ]

            started = time.perf_counter()
            for task_run in task_runs:
                store.record_task_run(task_run, owner.token, result=result)
            record_us = (time.perf_counter() - started) / calls * 1e6

            started = time.perf_counter()
            for _ in range(calls):
                store.get_flow_run(run.id)
            get_us = (time.perf_counter() - started) / calls * 1e6
        finally:
            store.close()

    print(f"record_task_run: {record_us:6.1f} us/call ({calls} calls)")
    print(f"get_flow_run:    {get_us:6.1f} us/call ({calls} calls)")


if __name__ == "__main__":
    main()
