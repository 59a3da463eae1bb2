"""Flows and helpers shared by the server's tests."""

from __future__ import annotations

from pathlib import Path

from legato.client import Client
from legato.engine.calls import execute_claimed_run
from legato.engine.liveness import current_owner
from legato.records import FlowRun, utcnow
from legato.states import StateType

FLOWS = """
from legato import flow, get_run_logger, pause_flow_run, task
from legato.input import RunInput


@task
def double(x: int) -> int:
    return 2 * x


@task
def total(xs: list) -> int:
    return sum(xs)


@flow(tags=["nightly", "<i>team</i>"])
def doubled(n: int = 3) -> int:
    get_run_logger().info("doubling %s <script>alert('log')</script>", n)
    return total(double.map(range(n)))


@flow
def broken(n: int = 1) -> None:
    double(n)
    raise ValueError("boom <script>alert('error')</script>")


class Approval(RunInput):
    approved: bool
    note: str = ""


@flow
def needs_approval() -> str:
    answer = pause_flow_run(wait_for_input=Approval)
    return "yes" if answer.approved else "no"
"""


def write_flows(folder: Path) -> Path:
    path = folder / "server_flows.py"
    path.write_text(FLOWS)
    return path


def run_flow(client: Client, flows: Path, name: str, **params: object) -> str:
    state = client.run_flow(client.load_flow(f"{flows}:{name}"), dict(params))
    if state.run_id is None:
        raise RuntimeError("the flow run has no id")
    return state.run_id


def paused_deployment_run(client: Client, flows: Path) -> FlowRun:
    """A run of a deployment, claimed and executed here until it pauses for input."""
    client.deploy(f"{flows}:needs_approval", name="approve")
    run = client.trigger("approve")
    claim = client.store.claim_flow_run(
        ["default"], current_owner("tok"), now=utcnow(), lease_seconds=30
    )
    if claim is None or execute_claimed_run(run.id, "tok", store=client.store).type is not (
        StateType.PAUSED
    ):
        raise RuntimeError("the run did not pause")
    return client.get_run(run.id)
