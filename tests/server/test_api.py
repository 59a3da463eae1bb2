"""The REST API on both backends: the same answers as the CLI, errors as HTTP statuses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _server_support import paused_deployment_run, run_flow, write_flows
from fastapi.testclient import TestClient

from legato.client import Client
from legato.server import create_app
from legato.states import StateType

pytestmark = pytest.mark.usefixtures("backend")

FLOWS = """
from legato import flow, get_run_logger, pause_flow_run, task
from legato.input import RunInput


@task
def double(x: int) -> int:
    return 2 * x


@flow
def doubled(n: int = 3) -> list:
    get_run_logger().info("doubling %s <b>numbers</b>", n)
    return double.map(range(n)).result()


@flow
def broken(n: int = 1) -> None:
    double(n)
    raise ValueError("boom")


class Approval(RunInput):
    approved: bool
    note: str = ""


@flow
def needs_approval() -> str:
    answer = pause_flow_run(wait_for_input=Approval)
    return "yes" if answer.approved else "no"
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "api_flows.py"
    path.write_text(FLOWS)
    return path


@pytest.fixture
def client() -> Iterator[Client]:
    c = Client()
    yield c


@pytest.fixture
def api(client: Client) -> Iterator[TestClient]:
    with TestClient(create_app(client)) as http:
        yield http


def test_runs_are_listed_filtered_and_paged(api: TestClient, client: Client, flows: Path) -> None:
    ids = [run_flow(client, flows, "doubled", n=n) for n in range(3)]
    failed = run_flow(client, flows, "broken")
    listed = api.get("/api/runs").json()
    assert [r["id"] for r in listed["runs"]] == [failed, *reversed(ids)]
    assert listed["next_offset"] is None
    only_failed = api.get("/api/runs", params={"state": "failed"}).json()["runs"]
    assert [r["id"] for r in only_failed] == [failed]
    page = api.get("/api/runs", params={"limit": 2, "offset": 1}).json()
    assert [r["id"] for r in page["runs"]] == [ids[2], ids[1]] and page["next_offset"] == 3
    assert api.get("/api/runs", params={"flow": "broken"}).json()["runs"][0]["id"] == failed
    bad = api.get("/api/runs", params={"state": "sleeping"})
    assert bad.status_code == 422


def test_one_run_with_task_runs_edges_and_logs(
    api: TestClient, client: Client, flows: Path
) -> None:
    run_id = run_flow(client, flows, "doubled", n=2)
    data = api.get(f"/api/runs/{run_id[:8]}").json()  # a prefix works, as in the CLI
    assert data["id"] == run_id and data["state"] == "completed"
    assert sorted(t["key"] for t in data["task_runs"]) == ["double[0]", "double[1]"]
    logs = api.get(f"/api/runs/{run_id}/logs").json()
    assert any("<b>numbers</b>" in line["message"] for line in logs["logs"])  # stored as is
    after = api.get(f"/api/runs/{run_id}/logs", params={"after": logs["last_id"]}).json()
    assert after["logs"] == []
    failed = api.get(f"/api/runs/{run_flow(client, flows, 'broken')}").json()
    assert failed["error"]["type"] == "ValueError" and "boom" in failed["error"]["traceback"]


def test_the_log_stream_ends_with_the_run_state(
    api: TestClient, client: Client, flows: Path
) -> None:
    run_id = run_flow(client, flows, "doubled", n=1)
    with api.stream("GET", f"/api/runs/{run_id}/logs/stream") as response:
        body = "".join(response.iter_text())
    assert "event: log" in body and "doubling 1" in body
    assert body.rstrip().endswith('data: {"state": "completed"}')


def test_errors_are_statuses_with_the_cli_messages(api: TestClient, client: Client) -> None:
    missing = api.get("/api/runs/ffffffff")
    assert missing.status_code == 404 and "no flow run matches" in missing.json()["detail"]
    assert api.get("/api/deployments/nope").status_code == 404
    assert api.post("/api/deployments/nope/trigger").status_code == 404


def test_deployments_trigger_pause_and_resume_through_the_queue(
    api: TestClient, client: Client, flows: Path
) -> None:
    client.deploy(f"{flows}:doubled", name="dbl")
    client.deploy(f"{flows}:needs_approval", name="approve")
    listed = api.get("/api/deployments").json()
    assert [d["name"] for d in listed] == ["approve", "dbl"]
    bad = api.post("/api/deployments/dbl/trigger", json={"parameters": {"n": "many"}})
    assert bad.status_code == 422 and "'n'" in bad.json()["detail"]
    assert client.list_runs() == []  # nothing queued
    queued = api.post("/api/deployments/dbl/trigger", json={"parameters": {"n": 2}})
    assert queued.status_code == 200 and queued.json()["state"] == "scheduled"
    assert api.post("/api/deployments/dbl/pause").json()["paused"] is True
    assert api.post("/api/deployments/dbl/resume").json()["paused"] is False
    detail = api.get("/api/deployments/dbl").json()
    assert [r["id"] for r in detail["runs"]] == [queued.json()["id"]]


def test_input_for_a_paused_run_is_validated_and_queues_it(
    api: TestClient, client: Client, flows: Path
) -> None:
    run = paused_deployment_run(client, flows)
    invalid = api.post(f"/api/runs/{run.id}/resume", json={"input": {"approved": "perhaps"}})
    assert invalid.status_code == 422
    assert any("approved" in p for p in invalid.json()["problems"])
    assert client.get_run(run.id).state is StateType.PAUSED
    queued = api.post(f"/api/runs/{run.id}/resume", json={"input": {"approved": True}})
    assert queued.status_code == 200 and queued.json()["state"] == "scheduled"
    terminal = run_flow(client, flows, "broken")
    refused = api.post(f"/api/runs/{terminal}/resume")
    assert refused.status_code == 409 and "legato resume" in refused.json()["detail"]


def test_cancel_limits_and_workers(api: TestClient, client: Client, flows: Path) -> None:
    client.deploy(f"{flows}:doubled", name="dbl")
    run = client.trigger("dbl")
    cancelled = api.post(f"/api/runs/{run.id}/cancel").json()
    assert cancelled["state"] == "cancelled"
    assert api.put("/api/limits/db", json={"slots": 2}).json()["slots"] == 2
    assert api.get("/api/limits").json() == [
        {"name": "db", "slots": 2, "per_seconds": None, "active": 0}
    ]
    assert api.put("/api/limits/db", json={"slots": -1}).status_code == 422
    assert api.get("/api/workers").json() == []
    assert api.get("/api/health").json()["ok"] is True


def test_a_token_guards_every_call(client: Client) -> None:
    with TestClient(create_app(client, token="s3cret-token")) as http:
        assert http.get("/api/runs").status_code == 401
        wrong = http.get("/api/runs", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "s3cret" not in wrong.text
        ok = http.get("/api/runs", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
        assert http.get("/openapi.json").json()["info"]["title"] == "legato"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_legato_server_serves_and_refuses_open_addresses_without_a_token(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LEGATO_API_TOKEN"}
    refused = subprocess.run(
        [sys.executable, "-m", "legato", "server", "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "LEGATO_API_TOKEN" in refused.stderr
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "legato", "server", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.json()["ok"] is True
        assert httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


def test_runs_filter_by_tag_and_time_and_page_with_a_cursor(
    api: TestClient, client: Client, flows: Path
) -> None:
    tagged_flows = write_flows(flows.parent)
    first = run_flow(client, flows, "doubled", n=1)
    tagged = [run_flow(client, tagged_flows, "doubled", n=1) for _ in range(3)]
    nightly = api.get("/api/runs", params={"tag": "nightly"}).json()["runs"]
    assert [r["id"] for r in nightly] == tagged[::-1]
    assert api.get("/api/runs", params={"tag": "night"}).json()["runs"] == []  # exact tags
    created = {r["id"]: r["created"] for r in api.get("/api/runs").json()["runs"]}
    window = api.get(
        "/api/runs",
        params={"created_after": created[tagged[0]], "created_before": created[tagged[2]]},
    ).json()["runs"]
    assert [r["id"] for r in window] == [tagged[1], tagged[0]]
    seen: list[str] = []
    params: dict[str, object] = {"limit": 1}
    while True:
        page = api.get("/api/runs", params=params).json()
        seen += [r["id"] for r in page["runs"]]
        if page["next_before"] is None:
            break
        params = {"limit": 1, "created_before": page["next_before"]}
    assert seen == [*tagged[::-1], first]
    bad = api.get("/api/runs", params={"created_after": "yesterday"})
    assert bad.status_code == 422


def test_one_task_run_with_its_result_preview(api: TestClient, client: Client, flows: Path) -> None:
    run_id = run_flow(client, flows, "doubled", n=3)
    run = api.get(f"/api/runs/{run_id}").json()
    assert run["result_preview"] == "[0, 2, 4]"
    second = next(t for t in run["task_runs"] if t["key"] == "double[1]")
    detail = api.get(f"/api/runs/{run_id}/tasks/{second['id']}").json()
    assert detail["result_preview"] == "2" and detail["state"] == "completed"
    other = run_flow(client, flows, "doubled", n=1)
    wrong_run = api.get(f"/api/runs/{other}/tasks/{second['id']}")
    assert wrong_run.status_code == 404 and "no task run matches" in wrong_run.json()["detail"]


def test_retry_queues_a_failed_deployment_run_and_refuses_others(
    api: TestClient, client: Client, flows: Path
) -> None:
    from legato.engine.calls import execute_claimed_run
    from legato.engine.liveness import current_owner
    from legato.records import utcnow

    client.deploy(f"{flows}:broken", name="brk")
    run = client.trigger("brk")
    client.store.claim_flow_run(["default"], current_owner("tok"), now=utcnow(), lease_seconds=30)
    assert execute_claimed_run(run.id, "tok", store=client.store).type is StateType.FAILED
    retried = api.post(f"/api/runs/{run.id}/retry")
    assert retried.status_code == 200 and retried.json()["state"] == "scheduled"
    again = api.post(f"/api/runs/{run.id}/retry")
    assert again.status_code == 409 and "only a failed, crashed or cancelled" in again.text


def test_stats_count_runs_by_state_with_failure_rate_and_slowest_flows(
    api: TestClient, client: Client, flows: Path
) -> None:
    run_flow(client, flows, "doubled", n=1)
    run_flow(client, flows, "doubled", n=2)
    run_flow(client, flows, "broken")
    stats = api.get("/api/stats", params={"hours": 1, "buckets": 4}).json()
    assert stats["totals"] == {"completed": 2, "failed": 1}
    assert len(stats["series"]) == 4 and stats["series"][-1]["counts"] == stats["totals"]
    assert stats["failure_rate"] == pytest.approx(1 / 3)
    flows_seen = {s["flow"]: s for s in stats["slowest_flows"]}
    assert flows_seen["doubled"]["runs"] == 2 and flows_seen["broken"]["failed"] == 1
    assert stats["workers"] == [] and stats["late_runs"] == []


def test_a_deployment_shows_its_parameter_schema(
    api: TestClient, client: Client, flows: Path
) -> None:
    client.deploy(f"{flows}:doubled", name="dbl", parameters={"n": 5})
    schema = api.get("/api/deployments/dbl").json()["parameter_schema"]
    assert schema["properties"]["n"]["type"] == "integer"
    assert schema["properties"]["n"]["default"] == 5 and schema["required"] == []


def test_task_runs_page_and_filter_and_a_run_can_leave_them_out(
    api: TestClient, client: Client, flows: Path
) -> None:
    run_id = run_flow(client, flows, "doubled", n=5)
    light = api.get(f"/api/runs/{run_id}", params={"tasks": "false"}).json()
    assert "task_runs" not in light and light["task_run_count"] == 5
    keys: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = api.get(f"/api/runs/{run_id}/tasks", params={"limit": 2, "offset": offset}).json()
        assert page["total"] == 5 and len(page["task_runs"]) == (1 if offset == 4 else 2)
        keys += [t["key"] for t in page["task_runs"]]
        offset = page["next_offset"]
    assert sorted(keys) == [f"double[{i}]" for i in range(5)]  # each once, in start order
    failed = api.get(f"/api/runs/{run_id}/tasks", params={"state": "failed"}).json()
    assert failed == {"task_runs": [], "total": 0, "next_offset": None}
    assert api.get(f"/api/runs/{run_id}/tasks", params={"task": "double"}).json()["total"] == 5


def test_deploy_backfill_and_delete_through_the_api(
    api: TestClient, client: Client, flows: Path
) -> None:
    body = {
        "entrypoint": f"{flows}:doubled",
        "parameters": {"n": 2},
        "schedules": [{"cron": "0 * * * *"}],
        "tags": ["api"],
    }
    created = api.put("/api/deployments/hourly", json=body)
    assert created.status_code == 200 and created.json()["schedules"][0]["cron"] == "0 * * * *"
    assert len(created.json()["next_runs"]) == 5
    assert client.get_deployment("hourly").parameters == {"n": 2}
    # The server does not load the code: parameters are checked against the
    # parameter schema the request carries (the one `legato deploy` records).
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": []}
    bad = api.put(
        "/api/deployments/broken",
        json={**body, "parameters": {"n": "many"}, "parameter_schema": schema},
    )
    assert bad.status_code == 422 and "'n'" in bad.json()["detail"]
    bad_cron = api.put("/api/deployments/broken", json={**body, "schedules": [{"cron": "nope"}]})
    assert bad_cron.status_code == 422
    not_a_target = api.put("/api/deployments/gone", json={**body, "entrypoint": "nowhere.py"})
    assert not_a_target.status_code == 422 and "entrypoint" in not_a_target.json()["detail"]
    assert [d["name"] for d in api.get("/api/deployments").json()] == ["hourly"]

    filled = api.post(
        "/api/deployments/hourly/backfill",
        json={"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T03:00:00Z"},
    ).json()
    assert filled["created"] == 4 and len(filled["runs"]) == 4
    again = api.post(
        "/api/deployments/hourly/backfill",
        json={"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T03:00:00Z"},
    ).json()
    assert again["created"] == 0  # each slot keeps its run

    assert api.delete("/api/deployments/hourly").json() == {"deleted": "hourly"}
    assert api.delete("/api/deployments/hourly").status_code == 404
    assert len(client.list_runs()) == 4  # runs stay


def test_limits_can_be_deleted_and_the_store_described(api: TestClient) -> None:
    api.put("/api/limits/db", json={"slots": 1})
    assert api.delete("/api/limits/db").json() == {"deleted": "db"}
    gone = api.delete("/api/limits/db")
    assert gone.status_code == 404 and "legato limit ls" in gone.json()["detail"]
    status = api.get("/api/store").json()
    assert status["backend"] in ("sqlite", "postgresql")
    assert status["schema_version"] == status["latest_version"]
    assert "flow_runs" in status["row_counts"]
