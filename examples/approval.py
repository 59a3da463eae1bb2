"""A flow that pauses for a human's approval, durably.

    legato run examples/approval.py:release -p version=1.4.0
    # exits with code 3: the run is paused, and the process is gone
    legato resume RUN_ID --input '{"approved": true, "reviewer": "ana"}'

Bad input (say `{"approved": "maybe"}`) is refused with exit code 2 and the
run stays paused. The build step ran before the pause and is not run again
on resume: its result is replayed from the store.
"""

from __future__ import annotations

from legato import RunInput, flow, get_run_logger, pause_flow_run, task


class Approval(RunInput):
    approved: bool
    reviewer: str
    comment: str = ""


@task
def build(version: str) -> str:
    get_run_logger().info("building %s", version)
    return f"app-{version}.tar.gz"


@task
def deploy(artifact: str, reviewer: str) -> str:
    get_run_logger().info("deploying %s, approved by %s", artifact, reviewer)
    return f"deployed {artifact}"


@flow
def release(version: str = "1.0.0") -> str:
    artifact = build(version)
    decision = pause_flow_run(wait_for_input=Approval, timeout=24 * 3600)
    if not decision.approved:
        return f"release of {artifact} rejected by {decision.reviewer}: {decision.comment}"
    return deploy(artifact, decision.reviewer)
