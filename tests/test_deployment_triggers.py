"""Deployment triggers in Python and in legato.yaml: `legato.DeploymentEventTrigger`,
``@flow(triggers=...)``, ``flow.deploy(triggers=...)``, ``triggers:`` in the project
file; each compiled into the automation ``deployment:<name>:<i>`` the deployment owns."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import legato
from legato.automations import service
from legato.automations.deployment_triggers import DeploymentEventTrigger
from legato.client import Client
from legato.engine.entrypoints import load_flow
from legato.errors import ConfigurationError
from legato.store.base import Store

pytestmark = pytest.mark.usefixtures("backend")  # SQLite and PostgreSQL

FLOWS = """
from legato import DeploymentEventTrigger, flow
from legato.events import DeploymentEventTrigger as PrefectName


@flow(
    triggers=[
        DeploymentEventTrigger(
            expect=["legato.flow-run.Completed"],
            match_related={"deployment": "extract"},
            parameters={"upstream_run_id": "{{ flow_run_id }}"},
        ),
        PrefectName(
            name="tagged",
            expect={"prefect.flow-run.Failed"},
            match_related=[{"prefect.resource.id": "prefect.tag.nightly"}],
            for_each=["prefect.resource.id"],
            threshold=3,
            within=600,
        ),
    ]
)
def load(upstream_run_id: str = "") -> str:
    return upstream_run_id


@flow
def plain(x: int = 0) -> int:
    return x
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "flows.py"
    path.write_text(FLOWS)
    return path


def _specs(store: Store) -> dict[str, dict[str, Any]]:
    return {a.name: json.loads(a.spec) for a in store.list_automations()}


def test_a_flows_own_triggers_become_its_deployments_automations(
    flows: Path, default_store: Store
) -> None:
    assert legato.DeploymentEventTrigger is DeploymentEventTrigger
    client = Client(default_store)
    client.deploy(f"{flows}:load", name="load")
    specs = _specs(default_store)
    assert sorted(specs) == ["deployment:load:0", "deployment:load:1"]
    first = specs["deployment:load:0"]
    assert first["trigger"]["expect"] == ["legato.flow-run.Completed"]
    assert first["trigger"]["match_related"] == {"legato.resource.id": "legato.deployment.extract"}
    assert first["actions"] == [
        {
            "type": "run-deployment",
            "deployment": "load",
            "parameters": {"upstream_run_id": "{{ flow_run_id }}"},
        }
    ]
    second = specs["deployment:load:1"]["trigger"]
    assert second["expect"] == ["legato.flow-run.Failed"]  # Prefect's names, read as legato's
    assert second["match_related"] == {"legato.resource.id": "legato.tag.nightly"}
    assert second["for_each"] == ["legato.resource.id"] and second["threshold"] == 3
    assert specs["deployment:load:1"]["description"].startswith("tagged: runs deployment load")

    # Given triggers replace the flow's own; an empty list means none.
    client.deploy(
        f"{flows}:load",
        name="load",
        triggers=[{"expect": ["shop.paid"], "match": {"legato.resource.id": "order.*"}}],
    )
    assert list(_specs(default_store)) == ["deployment:load:0"]
    assert _specs(default_store)["deployment:load:0"]["trigger"]["expect"] == ["shop.paid"]
    client.deploy(f"{flows}:load", name="load", triggers=[])
    assert _specs(default_store) == {}


def test_flow_deploy_takes_triggers_and_delete_removes_them(
    flows: Path, default_store: Store
) -> None:
    plain = load_flow(f"{flows}:plain")
    trigger = DeploymentEventTrigger(expect=["x.happened"], parameters={"x": 5})
    plain.deploy("plain-on-x", triggers=[trigger])
    _, automation = service.get(default_store, "deployment:plain-on-x:0")
    assert automation.actions[0].model_dump()["parameters"] == {"x": 5}
    # A user's automation that only looks similar is not the deployment's.
    service.apply(default_store, service.load_yaml(AUTOMATION))
    Client(default_store).delete_deployment("plain-on-x")
    assert list(_specs(default_store)) == ["deployment:plain-on-x:mine"]


AUTOMATION = """
- name: "deployment:plain-on-x:mine"
  trigger: {expect: [x.happened]}
  actions: [{type: emit-event, event: x.seen, resource: {legato.resource.id: x}}]
"""


def test_project_file_triggers(flows: Path, tmp_path: Path, default_store: Store) -> None:
    project = tmp_path / "legato.yaml"
    project.write_text(
        textwrap.dedent(
            f"""
            deployments:
              - name: load-after-extract
                entrypoint: {flows.name}:load
                triggers:
                  - expect: [legato.flow-run.Completed]
                    match_related: {{flow: extract}}
                    parameters: {{upstream_run_id: "{{{{ flow_run_id }}}}"}}
                  - expect: [legato.flow-run.Crashed]
                    after: [legato.flow-run.Running]
                    posture: Proactive
                    within: 3600
                    enabled: false
              - name: plain
                entrypoint: {flows.name}:plain
            """
        )
    )
    Client(default_store).deploy_project(project)
    specs = _specs(default_store)
    assert sorted(specs) == ["deployment:load-after-extract:0", "deployment:load-after-extract:1"]
    first = specs["deployment:load-after-extract:0"]
    assert first["trigger"]["match_related"] == {"legato.resource.id": "legato.flow.extract"}
    assert first["actions"][0]["parameters"] == {"upstream_run_id": "{{ flow_run_id }}"}
    proactive = default_store.get_automation("deployment:load-after-extract:1")
    assert proactive is not None and not proactive.enabled
    assert json.loads(proactive.spec)["trigger"]["posture"] == "Proactive"

    project.write_text(
        textwrap.dedent(
            f"""
            deployments:
              - name: broken
                entrypoint: {flows.name}:plain
                triggers: [{{expect: [a.b], posture: Proactive}}]
            """
        )
    )
    with pytest.raises(ConfigurationError, match=r"deployments\.0 \(broken\): .*needs `within`"):
        Client(default_store).deploy_project(project)
    assert default_store.get_deployment("broken") is None


def test_bad_triggers_are_refused_with_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match="triggers must be a list"):
        legato.flow(triggers={"expect": ["a"]})(lambda: None)
    with pytest.raises(ConfigurationError, match=r"triggers\[0\]: unknown field\(s\) expct"):
        legato.flow(triggers=[{"expct": ["a"]}])(lambda: None)
    with pytest.raises(ConfigurationError, match="job_variables are not supported"):
        DeploymentEventTrigger(expect=["a"], job_variables={"image": "x"})
    with pytest.raises(ConfigurationError, match="legato matches one related resource"):
        DeploymentEventTrigger(match_related=[{"a": "1"}, {"b": "2"}])


def test_the_suspend_action_leaves_a_run_that_is_not_running(
    flows: Path, default_store: Store
) -> None:
    from legato.automations.actions import ACTIONS, ActionContext
    from legato.automations.model import parse_action

    client = Client(default_store)
    client.deploy(f"{flows}:plain", name="plain")
    run = client.trigger("plain")
    action = parse_action(json.dumps({"type": "suspend-flow-run", "flow_run_id": run.id}))
    ctx = ActionContext(client, "firing:0", None, {"name": "a"}, {"id": "firing"})
    result = ACTIONS["suspend-flow-run"](ctx, action)
    assert result == f"flow run {run.id} is scheduled, not running: left as it is"
    assert client.get_run(run.id).state.value == "scheduled"


def test_a_deploy_through_the_api_keeps_the_triggers_and_deadlines_it_cannot_see(
    flows: Path, default_store: Store
) -> None:
    """PUT /api/deployments does not load code, so it cannot know the flow's own
    triggers and deadlines: it keeps what the deployment has rather than dropping them."""
    from fastapi.testclient import TestClient

    from legato.server import create_app

    client = Client(default_store)
    client.deploy(
        f"{flows}:load", name="load", deadlines=[legato.Deadline(within=timedelta(hours=1))]
    )
    before = _specs(default_store)
    assert sorted(before) == ["deployment:load:0", "deployment:load:1"]
    with TestClient(create_app(client)) as http:
        answer = http.put(
            "/api/deployments/load",
            json={"entrypoint": f"{flows}:load", "description": "changed by the API"},
        )
    assert answer.status_code == 200, answer.text
    assert _specs(default_store) == before
    stored = default_store.get_deployment("load")
    assert stored is not None and stored.description == "changed by the API"
    assert [d.within.total_seconds() for d in stored.deadlines] == [3600.0]
