"""A separate process claiming queued runs until none is left (test_contract_coordination.py).

    python _claim_worker.py DB_PATH_OR_URL QUEUE BARRIER_DIR

Says it is ready (a file ``ready-<pid>`` in BARRIER_DIR) and waits for the file
``go`` there, so that every worker claims at the same time (tests/_waiting.py,
`release_together`), then prints the ids it claimed as a JSON list.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from legato.records import RunOwner
from legato.store import open_store


def wait_for_go(barrier: Path) -> None:
    (barrier / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"never released: no {barrier / 'go'} after 60s")
        time.sleep(0.002)


def main() -> None:
    target, queue, barrier = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    store = open_store(target)
    owner = RunOwner(token=uuid.uuid4().hex, host=socket.gethostname(), pid=os.getpid())
    wait_for_go(barrier)
    claimed: list[str] = []
    try:
        while True:
            run = store.claim_flow_run([queue], owner, now=datetime.now(UTC), lease_seconds=60)
            if run is None:
                break
            claimed.append(run.id)
    finally:
        store.close()
    print(json.dumps(claimed))


if __name__ == "__main__":
    main()
