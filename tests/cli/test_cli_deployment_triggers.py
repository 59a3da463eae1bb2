"""Deployment triggers from the CLI: ``legato deploy --trigger-on``, flow after flow
with a real worker, and the automations a deployment owns (replaced, listed, deleted)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from _waiting import wait_until

if TYPE_CHECKING:
    from conftest import Cli

pytestmark = pytest.mark.usefixtures("backend")  # SQLite and PostgreSQL

CHAIN = """
import json
import os
from pathlib import Path

from legato import flow
from legato.client import Client

STATE = Path(os.environ["FLOW_STATE_DIR"])


@flow
def upstream(n: int = 3) -> str:
    path = STATE / f"extract-{n}.txt"
    path.write_text("x" * n)
    return str(path)


@flow
def downstream(upstream_run_id: str, note: str = "") -> str:
    location = Client().run_result(upstream_run_id)
    size = len(Path(location).read_text())
    (STATE / "downstream.json").write_text(
        json.dumps({"upstream_run_id": upstream_run_id, "location": location, "size": size,
                    "note": note})
    )
    return location
"""

PARAMS = '{"upstream_run_id": "{{ flow_run_id }}", "note": "{{ event.event }}"}'


@pytest.fixture
def chain(cli: Cli) -> str:
    path = cli.flows_dir / "chain.py"
    path.write_text(CHAIN)
    return str(path)


def _deploy_downstream(cli: Cli, chain: str, *extra: str) -> dict[str, Any]:
    result = cli(
        "deploy", f"{chain}:downstream", "--name", "after-upstream",
        "--trigger-on", "legato.flow-run.Completed", "--match-related", "flow=upstream",
        "--trigger-params", PARAMS, *extra, "--json",
    )  # fmt: skip
    assert result.code == 0, str(result)
    data = result.json()
    assert isinstance(data, dict)
    return data


def _automations(cli: Cli) -> list[dict[str, Any]]:
    result = cli("automation", "ls", "--json")
    assert result.code == 0, str(result)
    found = result.json()
    assert isinstance(found, list)
    return found


def test_deploy_trigger_on_stores_an_owned_automation(cli: Cli, chain: str) -> None:
    _deploy_downstream(cli, chain)
    [automation] = _automations(cli)
    assert automation["name"] == "deployment:after-upstream:0"
    assert automation["trigger"]["expect"] == ["legato.flow-run.Completed"]
    assert automation["trigger"]["match_related"] == {"legato.resource.id": "legato.flow.upstream"}
    assert automation["actions"] == [
        {
            "type": "run-deployment",
            "deployment": "after-upstream",
            "parameters": json.loads(PARAMS),
        }
    ]
    shown = cli("deployment", "show", "after-upstream", "--json")
    [trigger] = shown.json()["triggers"]
    assert trigger["automation"] == "deployment:after-upstream:0"
    assert trigger["parameters"] == json.loads(PARAMS)
    plain = cli("deployment", "show", "after-upstream")
    assert "trigger:    deployment:after-upstream:0: on legato.flow-run.Completed" in plain.stdout

    # Deploying again replaces the triggers: two events, a threshold, a window...
    _deploy_downstream(
        cli, chain, "--trigger-on", "legato.flow-run.Failed", "--threshold", "2",
        "--within", "60", "--match-related", "flow=other",
    )  # fmt: skip
    [automation] = _automations(cli)
    trigger = automation["trigger"]
    assert trigger["expect"] == ["legato.flow-run.Completed", "legato.flow-run.Failed"]
    assert trigger["threshold"] == 2
    assert trigger["match_related"] == {
        "legato.resource.id": ["legato.flow.upstream", "legato.flow.other"]
    }
    # ... and without --trigger-on, to none (the flow declares none).
    again = cli("deploy", f"{chain}:downstream", "--name", "after-upstream")
    assert again.code == 0, str(again)
    assert _automations(cli) == []

    _deploy_downstream(cli, chain)
    assert cli("deployment", "delete", "after-upstream").code == 0
    assert _automations(cli) == []


def test_trigger_options_are_checked_before_anything_is_stored(cli: Cli, chain: str) -> None:
    lonely = cli("deploy", f"{chain}:downstream", "--name", "b", "--match-related", "flow=a")
    assert lonely.code == 2 and "add --trigger-on EVENT" in lonely.stderr
    broken = cli(
        "deploy", f"{chain}:downstream", "--name", "b", "--trigger-on", "x.y",
        "--trigger-params", '{"upstream_run_id": "{{ flow_run_id"}',
    )  # fmt: skip
    assert broken.code != 0 and "upstream_run_id is not a valid template" in broken.stderr
    both = cli(
        "deploy", f"{chain}:downstream", "--name", "b", "--trigger-on", "x.y",
        "--match-related", "flow=a", "--match-related", "tag=b",
    )  # fmt: skip
    assert both.code != 0 and "matches ONE related resource" in both.stderr
    assert cli("deployments", "--json").json() == [] and _automations(cli) == []


def test_flow_after_flow_with_a_real_worker(cli: Cli, chain: str) -> None:
    """Run B when A completes, with A's result location: A's Completed event ->
    B's run, its parameter filled from the event, run by a worker."""
    assert cli("deploy", f"{chain}:upstream", "--name", "extract").code == 0
    _deploy_downstream(cli, chain)
    worker = cli.popen("worker", "--lease-seconds", "2")
    try:
        queued = cli("trigger", "extract", "-p", "n=7")
        assert queued.code == 0, str(queued)
        upstream_id = queued.stdout.strip()
        output = cli.state_dir / "downstream.json"
        wait_until(output.exists, timeout=90, what="the triggered downstream run")
    finally:
        worker.terminate()
        worker.communicate(timeout=60)  # closes its pipes
    done = json.loads(output.read_text())
    assert done == {
        "upstream_run_id": upstream_id,
        "location": str(cli.state_dir / "extract-7.txt"),
        "size": 7,
        "note": "legato.flow-run.Completed",
    }
    [run] = cli("runs", "--json", "--deployment", "after-upstream").json()
    assert run["parameters"]["upstream_run_id"] == upstream_id

    # Which event triggered the run: legato.deployment.triggered names the run, the
    # firing and A's Completed event; B's Scheduled event says so too.
    [completed] = _events(cli, "legato.flow-run.Completed", f"legato.flow-run.{upstream_id}")
    [triggered] = _events(cli, "legato.deployment.triggered", f"legato.flow-run.{run['id']}")
    payload = triggered["payload"]
    assert payload["flow_run_id"] == run["id"]
    assert payload["triggering_event_id"] == completed["id"]
    assert payload["automation"] == "deployment:after-upstream:0"
    assert triggered["resource"]["legato.resource.id"] == "legato.deployment.after-upstream"
    firings = cli("automation", "explain", "deployment:after-upstream:0", "--json").json()
    assert payload["firing_id"] == firings["firings"][0]["id"]
    [scheduled] = _events(cli, "legato.flow-run.Scheduled", f"legato.flow-run.{run['id']}")
    assert completed["id"] in scheduled["payload"]["message"]


def _events(cli: Cli, name: str, resource: str) -> list[dict[str, Any]]:
    result = cli("events", "--json", "--name", name, "--resource", resource)
    assert result.code == 0, str(result)
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
