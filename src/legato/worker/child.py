"""The process a worker starts for one claimed run.

Forked by the worker's fork server (`legato.worker.forkserver`), which has
legato imported already; or, by hand,
``LEGATO_CLAIM_TOKEN=... python -m legato.worker.child RUN_ID``. The run
starts only while the claim holds. Exit codes follow `legato run`: 0
completed (or queued again: a flow retry, a durable sleep), 1 failed, crashed
or cancelled, 3 paused; 4 when the claim was lost, before the start or later
(another worker took the run over), in which case it wrote nothing.
"""

from __future__ import annotations

import os
import sys

EXIT_CLAIM_LOST = 4


def main(argv: list[str]) -> int:
    from legato.engine.calls import execute_claimed_run
    from legato.errors import LegatoError, RunLostError, RunOwnershipLost
    from legato.settings import prefect_shim_enabled
    from legato.states import StateType

    if len(argv) != 1 or not os.environ.get("LEGATO_CLAIM_TOKEN"):
        print(
            "usage: LEGATO_CLAIM_TOKEN=... python -m legato.worker.child RUN_ID "
            "(started by `legato worker`, not by hand)",
            file=sys.stderr,
        )
        return 2
    run_id, token = argv[0], os.environ["LEGATO_CLAIM_TOKEN"]
    if prefect_shim_enabled():
        from legato.prefect_shim import install

        install()
    try:
        state = execute_claimed_run(run_id, token)
    except RunOwnershipLost as exc:
        print(f"legato worker: {exc}", file=sys.stderr)
        return EXIT_CLAIM_LOST
    except LegatoError as exc:
        print(f"legato worker: flow run {run_id}: {exc}", file=sys.stderr)
        return 1
    if isinstance(state.result(raise_on_failure=False), RunLostError):
        return EXIT_CLAIM_LOST  # the engine said why, in one line, and wrote nothing
    return {StateType.COMPLETED: 0, StateType.SCHEDULED: 0, StateType.PAUSED: 3}.get(state.type, 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
