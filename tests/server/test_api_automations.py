"""Automations over HTTP: apply, list, read with firings, enable/disable, delete."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from legato.automations.evaluator import Evaluator
from legato.client import Client
from legato.server import create_app

SPEC = {
    "name": "on-paid",
    "trigger": {"expect": ["shop.paid"]},
    "actions": [
        {"type": "emit-event", "event": "shop.thanked", "resource": {"legato.resource.id": "t"}}
    ],
}


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def api(client: Client) -> Iterator[TestClient]:
    with TestClient(create_app(client)) as http:
        yield http


def test_apply_list_read_pause_delete(api: TestClient, client: Client) -> None:
    created = api.post("/api/automations", json=[SPEC])
    assert created.status_code == 200, created.text
    assert created.json() == {"applied": [{"name": "on-paid", "created": True}]}
    again = api.post("/api/automations", json={"automations": [SPEC]})
    assert again.json()["applied"][0]["created"] is False
    [listed] = api.get("/api/automations").json()["automations"]
    assert (listed["name"], listed["enabled"], listed["last_fired"]) == ("on-paid", True, None)

    posted = api.post(
        "/api/events", json={"event": "shop.paid", "resource": {"legato.resource.id": "o"}}
    )
    assert posted.status_code == 202, posted.text
    Evaluator(client).run_until_caught_up()
    detail = api.get("/api/automations/on-paid").json()
    [firing] = detail["firings"]
    assert firing["events"][0]["event"] == "shop.paid"
    assert firing["actions"][0]["state"] == "done"

    paused = api.patch("/api/automations/on-paid", json={"enabled": False})
    assert paused.status_code == 200 and paused.json()["enabled"] is False
    assert api.delete("/api/automations/on-paid").json() == {"deleted": "on-paid"}
    missing = api.get("/api/automations/on-paid")
    assert missing.status_code == 404 and "legato automation ls" in missing.json()["detail"]


def test_an_invalid_spec_is_refused_with_its_path(api: TestClient) -> None:
    bad = {**SPEC, "trigger": {"threshold": 0}}
    answer = api.post("/api/automations", json=[SPEC, bad])
    assert answer.status_code == 422
    assert "[1].trigger.threshold" in answer.json()["detail"]
    assert api.get("/api/automations").json()["automations"] == []
