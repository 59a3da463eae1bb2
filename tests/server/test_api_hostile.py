"""Hostile input to the API: absurd numbers, bools as ints, numbers as times. Each is
a 422 in the one error shape, naming the field, and nothing is stored; HEAD and
OPTIONS answer as HTTP says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server_support import run_flow, write_flows
from fastapi.testclient import TestClient

from legato.client import Client
from legato.server import create_app

pytestmark = pytest.mark.usefixtures("backend")

HUGE = 2**63


@pytest.fixture
def client() -> Iterator[Client]:
    yield Client()


@pytest.fixture
def api(client: Client) -> Iterator[TestClient]:
    with TestClient(create_app(client), raise_server_exceptions=False) as http:
        yield http


def refused(answer: Any, field: str) -> None:
    """A 422 in the error shape whose problems name ``field``."""
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert set(body) == {"error", "detail", "problems"}, body
    assert any(field in problem for problem in body["problems"]), body
    assert field in body["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"slots": HUGE},
        {"slots": 10**30},
        {"slots": -1},
        {"slots": False},
        {"slots": 1.5},
        {"slots": "3"},
        {"slots": 1, "per_seconds": 1e308},
        {"slots": 1, "per_seconds": True},
        {"slots": 1, "per_seconds": 0},
    ],
)
def test_absurd_limits_are_422_naming_the_field(
    api: TestClient, client: Client, body: dict[str, Any]
) -> None:
    answer = api.put("/api/limits/db", json=body)
    refused(answer, "slots" if "per_seconds" not in body else "per_seconds")
    assert client.limits() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"priority": HUGE}, "priority"),
        ({"priority": -HUGE}, "priority"),
        ({"priority": True}, "priority"),
        ({"concurrency_limit": HUGE}, "concurrency_limit"),
        ({"concurrency_limit": 0}, "concurrency_limit"),
        ({"schedules": [{"interval": 1e308}]}, "interval"),
        ({"schedules": [{"interval": 1e20}]}, "interval"),
        ({"schedules": [{"interval": 0.001}]}, "interval"),
        ({"schedules": [{"interval": True}]}, "interval"),
        ({"schedules": [{"interval": 60, "anchor": 0}]}, "anchor"),
        ({"schedules": [{"interval": 60, "anchor": "0"}]}, "anchor"),
        ({"schedules": [{"interval": 60, "anchor": "99999-01-01T00:00:00Z"}]}, "anchor"),
        ({"catchup": 1}, "catchup"),
        ({"extra": 1}, "extra"),
    ],
)
def test_absurd_deployments_are_422_naming_the_field_and_nothing_is_stored(
    api: TestClient, client: Client, change: dict[str, Any], field: str
) -> None:
    body = {"entrypoint": "flows.py:etl", **change}
    refused(api.put("/api/deployments/big", json=body), field)
    assert client.deployments() == []
    # Every reader still answers.
    assert api.get("/api/deployments").json() == []


def test_times_are_iso_text_and_counts_are_bounded(
    api: TestClient, client: Client, tmp_path: Path
) -> None:
    flows = write_flows(tmp_path)
    run_id = run_flow(client, flows, "doubled", n=1)
    client.deploy(f"{flows}:doubled", name="dbl", schedules=[], parameters={"n": 1})
    refused(api.get(f"/api/runs/{run_id}/logs", params={"after": "9" * 23}), "after")
    refused(api.get(f"/api/runs/{run_id}/logs/stream", params={"after": "9" * 23}), "after")
    refused(api.get("/api/runs", params={"created_after": "0"}), "created_after")
    refused(api.get("/api/runs", params={"limit": "9" * 20}), "limit")
    refused(api.post("/api/deployments/dbl/trigger", json={"at": 0}), "at")
    refused(api.post("/api/deployments/dbl/trigger", json={"at": "1e9"}), "at")
    refused(api.post("/api/deployments/dbl/backfill", json={"start": 0, "concurrency": 1}), "start")
    refused(
        api.post(
            "/api/deployments/dbl/backfill",
            json={"start": "2026-01-01T00:00:00Z", "concurrency": HUGE},
        ),
        "concurrency",
    )
    assert [r.id for r in client.list_runs()] == [run_id]  # nothing queued
    # The same requests, well formed, are answered.
    assert api.get(f"/api/runs/{run_id}/logs", params={"after": 0}).status_code == 200
    at = api.post("/api/deployments/dbl/trigger", json={"at": "2030-01-01T00:00:00"})
    assert at.status_code == 200 and at.json()["scheduled_time"].startswith("2030-01-01T00:00")


def test_every_error_has_one_shape(api: TestClient) -> None:
    for answer in (
        api.get("/api/runs/nope"),  # legato's own error
        api.get("/api/no-such-route"),  # an HTTP error
        api.put(
            "/api/limits/db", content=b"{not json", headers={"content-type": "application/json"}
        ),
        api.post("/api/runs/x/cancel", json=None, params={"x": 1}),
    ):
        assert set(answer.json()) == {"error", "detail", "problems"}, answer.text
    assert api.get("/api/no-such-route").json()["error"] == "NotFound"


def test_head_works_wherever_get_does_and_options_lists_every_method(
    api: TestClient, client: Client, tmp_path: Path
) -> None:
    flows = write_flows(tmp_path)
    run_id = run_flow(client, flows, "doubled", n=1)
    client.deploy(f"{flows}:doubled", name="dbl")
    for path in (
        "/api/health",
        "/api/runs",
        f"/api/runs/{run_id}",
        f"/api/runs/{run_id}/logs/stream",
        "/api/deployments/dbl",
        "/deployments/dbl",
        "/openapi.json",
    ):
        get, head = api.get(path), api.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
    options = api.options("/api/deployments/dbl")
    assert options.status_code == 204
    assert options.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PUT"
    assert api.options("/api/runs/x/cancel").headers["allow"] == "OPTIONS, POST"
    wrong = api.patch("/api/deployments/dbl")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PUT"
    assert api.options("/api/no-such-route").status_code == 404


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"entrypoint": "a.py:f", "parameters": {"x": "\\ud800"}}', "parameters"),
        ('{"entrypoint": "a.py:f", "parameters": {"\\ud800": 1}}', "parameters"),
        ('{"entrypoint": "a.py:f", "parameters": {"x": NaN}}', "parameters"),
        ('{"entrypoint": "a.py:f", "parameter_schema": {"title": "\\udfff"}}', "parameter_schema"),
        ('{"entrypoint": "a.py:f", "description": "\\ud800"}', "description"),
    ],
)
def test_json_no_store_can_hold_is_422_not_500(
    api: TestClient, client: Client, raw: str, field: str
) -> None:
    answer = api.put(
        "/api/deployments/odd", content=raw, headers={"content-type": "application/json"}
    )
    refused(answer, field)
    assert client.deployments() == []


def test_a_hostile_parameter_schema_is_read_within_bounds(api: TestClient) -> None:
    looping = {
        "properties": {"n": {"$ref": "#/$defs/A"}},
        "$defs": {"A": {"$ref": "#/$defs/A"}},
    }
    body = {"entrypoint": "a.py:f", "parameters": {"n": 1}, "parameter_schema": looping}
    assert api.put("/api/deployments/loop", json=body).status_code == 200
    assert api.post("/api/deployments/loop/trigger").status_code == 200  # "any value"
    not_an_object = {**body, "parameter_schema": {"type": "array"}}
    wrong = api.put("/api/deployments/loop", json=not_an_object)
    assert wrong.status_code == 422 and "parameter_schema" in wrong.json()["detail"]
