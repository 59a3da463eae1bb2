"""The Automations pages: the list with the last firing, and one automation's buckets,
firings, their events and action states, everything escaped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from legato._event_records import Event
from legato.automations import service
from legato.automations.evaluator import Evaluator
from legato.client import Client
from legato.server import create_app

YAML = """
- name: on-paid
  description: "<script>alert(1)</script>"
  trigger: {expect: [shop.paid], for_each: [shop.region], threshold: 2}
  actions: [{type: run-deployment, deployment: missing}]
"""


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def ui(client: Client) -> Iterator[TestClient]:
    with TestClient(create_app(client)) as http:
        yield http


def paid(region: str) -> Event:
    return Event(
        id=uuid.uuid4().hex,
        event="shop.paid",
        occurred=datetime.now(UTC),
        resource={"legato.resource.id": "order.1", "shop.region": region},
    )


def test_list_and_detail_pages(ui: TestClient, client: Client) -> None:
    empty = ui.get("/automations")
    assert empty.status_code == 200 and "No automations" in empty.text
    service.apply(client.store, service.load_yaml(YAML))
    client.store.emit_events([paid("eu"), paid("eu"), paid("us")])
    Evaluator(client).run_until_caught_up()
    listed = ui.get("/automations")
    assert '/automations/on-paid">on-paid</a>' in listed.text and "never" not in listed.text
    detail = ui.get("/automations/on-paid")
    assert detail.status_code == 200
    assert "<script>alert(1)</script>" not in detail.text and "&lt;script&gt;" in detail.text
    assert "2 matching event(s)" in detail.text
    assert "run-deployment: pending (1)" in detail.text  # failed once, will retry
    assert "DeploymentNotFoundError" in detail.text
    assert "[&#34;us&#34;]" in detail.text or '["us"]' in detail.text  # the open bucket
    assert ui.get("/automations/nothing").status_code == 404
