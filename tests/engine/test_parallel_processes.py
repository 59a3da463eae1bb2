"""Many processes on one SQLite file at once: no "database is locked", nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from _engine_support import subprocess_env

from legato.client import Client
from legato.states import StateType
from legato.store.base import Store

WRITERS = 6
RUNS_PER_WRITER = 20
TASKS_PER_RUN = 20

WRITER = textwrap.dedent(
    """
    import sys

    from legato import flow, task


    @task
    def work(i: int) -> int:
        return i * 2


    @task
    def fan(i: int) -> int:
        return i + 1


    @flow
    def batch(worker: int, n: int) -> int:
        # Half direct calls, half a concurrent map: both kinds of writes contend.
        total = sum(work(i) for i in range(n // 2))
        return total + sum(fut.result() for fut in fan.map(range(n - n // 2)))


    if __name__ == "__main__":
        worker, runs, n = (int(a) for a in sys.argv[1:4])
        for _ in range(runs):
            batch(worker, n)
        print("ok")
    """
)

READER = textwrap.dedent(
    """
    import json
    import subprocess
    import sys
    from pathlib import Path

    stop = Path(sys.argv[1])
    reads = 0
    failures = []
    while not stop.exists() or reads < 2:
        proc = subprocess.run(
            [sys.executable, "-m", "legato", "runs", "--json", "--limit", "200"],
            capture_output=True,
            text=True,
        )
        reads += 1
        if proc.returncode != 0:
            failures.append(f"exit {proc.returncode}: {proc.stderr.strip()}")
        else:
            json.loads(proc.stdout)
        sys.stderr.write(proc.stderr)
    print(json.dumps({"reads": reads, "failures": failures}))
    sys.exit(1 if failures else 0)
    """
)


def test_six_writers_and_a_reader_on_one_sqlite_file(
    tmp_path: Path, legato_home: Path, default_store: Store
) -> None:
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    reader = tmp_path / "reader.py"
    reader.write_text(READER)
    stop = tmp_path / "stop"
    env = subprocess_env(legato_home)
    # Create the database first so that the writers race on runs, not on migrations.
    Client().list_runs()

    reader_proc = subprocess.Popen(
        [sys.executable, str(reader), str(stop)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writers = [
        subprocess.Popen(
            [sys.executable, str(writer), str(w), str(RUNS_PER_WRITER), str(TASKS_PER_RUN)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WRITERS)
    ]
    started = time.monotonic()
    outputs = []
    try:
        for proc in writers:
            outputs.append(proc.communicate(timeout=90))
    finally:
        stop.touch()
        for proc in writers:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    reader_out, reader_err = reader_proc.communicate(timeout=60)
    elapsed = time.monotonic() - started

    for proc, (out, err) in zip(writers, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
        assert "database is locked" not in err.lower(), err
    assert "database is locked" not in reader_err.lower(), reader_err
    assert reader_proc.returncode == 0, reader_out + reader_err
    report = json.loads(reader_out)
    assert report["failures"] == []
    assert report["reads"] >= 2

    runs = default_store.list_flow_runs(limit=1000)
    assert len(runs) == WRITERS * RUNS_PER_WRITER
    assert all(r.flow_name == "batch" and r.state is StateType.COMPLETED for r in runs)
    per_worker: dict[int, int] = {}
    for run in runs:
        per_worker[run.parameters["worker"]] = per_worker.get(run.parameters["worker"], 0) + 1
        task_runs = default_store.list_task_runs(run.id)
        assert len(task_runs) == TASKS_PER_RUN, run.id
        assert all(t.state is StateType.COMPLETED for t in task_runs)
        assert len({t.call_key for t in task_runs}) == TASKS_PER_RUN
    assert per_worker == dict.fromkeys(range(WRITERS), RUNS_PER_WRITER)
    assert elapsed < 90
