"""A separate process claiming queued runs until none is left (test_contract_coordination.py).

    python _claim_worker.py DB_PATH_OR_URL QUEUE START_AT

Waits for the wall clock to reach START_AT so that every worker claims at the
same time, then prints the ids it claimed as a JSON list.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from datetime import UTC, datetime

from legato.records import RunOwner
from legato.store import open_store


def main() -> None:
    target, queue, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    store = open_store(target)
    owner = RunOwner(token=uuid.uuid4().hex, host=socket.gethostname(), pid=os.getpid())
    time.sleep(max(0.0, start_at - time.time()))
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
