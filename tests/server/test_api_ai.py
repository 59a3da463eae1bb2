"""The REST API of legato.ai on both backends: prompts, a run's model calls, forks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from legato.client import Client
from legato.engine.calls import execute_claimed_run
from legato.engine.liveness import current_owner
from legato.records import FlowRun, utcnow
from legato.server import create_app
from legato.states import StateType

pytestmark = pytest.mark.usefixtures("backend")

FLOWS = """
from legato import ai, flow
from legato.ai.testing import FakeModel

# Each process numbers the requests it asks: a replayed answer keeps its number.
fake = FakeModel.returning(lambda request: f"answer {len(fake.requests)}")


@flow
def chain(style: str = "plain") -> list:
    ask = ai.Prompt("ask", "Question {n}, answered " + style, system="Be brief.")
    return [ai.call(fake, ask(n=n)).output for n in range(3)]
"""


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def api(client: Client) -> Iterator[TestClient]:
    with TestClient(create_app(client)) as http:
        yield http


def _worker_runs(client: Client, run_id: str) -> FlowRun:
    """Claim the queued run ``run_id`` and execute it here, as a worker would."""
    claim = client.store.claim_flow_run(
        ["default"], current_owner("tok"), now=utcnow(), lease_seconds=30
    )
    assert claim is not None and claim.id == run_id
    assert execute_claimed_run(run_id, "tok", store=client.store).type is StateType.COMPLETED
    return client.get_run(run_id)


def test_prompts_are_listed_shown_by_prefix_and_diffed(
    api: TestClient, client: Client, tmp_path: Path
) -> None:
    flows = tmp_path / "ai_flows.py"
    flows.write_text(FLOWS)
    chain = client.load_flow(f"{flows}:chain")
    assert client.run_flow(chain, {"style": "plainly"}).type is StateType.COMPLETED
    assert client.run_flow(chain, {"style": "in verse"}).type is StateType.COMPLETED

    listed = api.get("/api/prompts").json()["prompts"]
    assert [(p["name"], p["versions"]) for p in listed] == [("ask", 2)]
    versions = api.get("/api/prompts/ask").json()["versions"]
    newest, oldest = versions
    assert newest["version"] == listed[0]["latest_version"]
    assert newest["template"] == "Question {n}, answered in verse"
    assert newest["system"] == "Be brief."
    one = api.get(f"/api/prompts/ask/versions/{oldest['version'][:6]}").json()
    assert one["template"] == "Question {n}, answered plainly"

    diff = api.get(
        "/api/prompts/ask/diff", params={"a": oldest["version"], "b": newest["version"]}
    ).json()
    assert "-Question {n}, answered plainly" in diff["template_diff"]
    assert "+Question {n}, answered in verse" in diff["template_diff"]
    assert diff["system_diff"] == ""

    missing = api.get("/api/prompts/nope")
    assert missing.status_code == 404 and "no prompt named 'nope'" in missing.json()["detail"]
    no_version = api.get("/api/prompts/ask/versions/abcdef")
    assert no_version.status_code == 404 and "has no version 'abcdef'" in no_version.text
    assert api.get("/api/prompts/ask/versions/not-hex").status_code == 422


def test_a_deployment_run_is_forked_for_a_worker_and_its_calls_read_as_json(
    api: TestClient, client: Client, tmp_path: Path
) -> None:
    flows = tmp_path / "ai_flows.py"
    flows.write_text(FLOWS)
    client.deploy(f"{flows}:chain", name="chain")
    source = _worker_runs(client, client.trigger("chain").id)

    calls = api.get(f"/api/runs/{source.id[:8]}/llm_calls").json()["llm_calls"]
    assert [(c["call_key"], c["try"], c["outcome"]) for c in calls] == [
        ("llm[0]", 1, "ok"),
        ("llm[1]", 1, "ok"),
        ("llm[2]", 1, "ok"),
    ]
    first = calls[0]
    assert (first["provider"], first["model"], first["prompt_name"]) == (
        "fake",
        "fake-model",
        "ask",
    )
    assert first["request"]["messages"][-1]["content"] == "Question 0, answered plain"
    assert first["usage"]["input_tokens"] > 0 and first["copied_from"] is None

    unknown = api.post(f"/api/runs/{source.id}/fork", json={"from": "llm[9]"})
    assert unknown.status_code == 422 and "llm[0]" in unknown.json()["detail"]
    forked = api.post(f"/api/runs/{source.id}/fork", json={"from": "llm[1]"})
    assert forked.status_code == 200, forked.text
    fork = forked.json()
    assert fork["state"] == "scheduled" and fork["work_queue"] == "default"
    assert f"forked-from:{source.id}" in fork["tags"]

    done = _worker_runs(client, fork["id"])
    # llm[0] replayed (answered in the first execution, request 1); llm[1] and llm[2]
    # asked again: requests 4 and 5 of this process's fake model.
    assert client.run_result(done.id) == ["answer 1", "answer 4", "answer 5"]
    tries = api.get(f"/api/runs/{done.id}/llm_calls").json()["llm_calls"]
    assert [(c["call_key"], c["copied_from"]) for c in tries] == [
        ("llm[0]", source.id),
        ("llm[1]", None),
        ("llm[2]", None),
    ]


def test_a_run_from_a_terminal_is_not_forked_by_the_api(
    api: TestClient, client: Client, tmp_path: Path
) -> None:
    flows = tmp_path / "ai_flows.py"
    flows.write_text(FLOWS)
    state = client.run_flow(client.load_flow(f"{flows}:chain"), {})
    refused = api.post(f"/api/runs/{state.run_id}/fork", json={"from": "llm[1]"})
    assert refused.status_code == 409 and "legato fork" in refused.json()["detail"]
    assert api.post(f"/api/runs/{state.run_id}/fork", json={"to": "x"}).status_code == 422
