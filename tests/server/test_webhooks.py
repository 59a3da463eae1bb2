"""``POST /hooks/{slug}`` through the server app over HTTP, on both backends: bodies,
authentication, templates (sandboxed), idempotent redelivery, limits."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from legato.client import Client
from legato.server import create_app

pytestmark = pytest.mark.usefixtures("backend")

GITHUB = """{
  "event": {{ ("github." ~ headers["x-github-event"]) | tojson }},
  "id": {{ headers["x-github-delivery"] | tojson }},
  "resource": {"legato.resource.id": {{ ("github.repo." ~ body.repository.full_name) | tojson }}},
  "payload": {"ref": {{ body.ref | tojson }}, "method": {{ method | tojson }}}
}"""

FORM = """{
  "event": "form.sent",
  "resource": {"legato.resource.id": {{ ("form." ~ slug) | tojson }}},
  "payload": {"name": {{ body.name | tojson }}, "tags": {{ body.tag | tojson }},
              "source": {{ query.source | tojson }}, "raw": {{ raw_body | tojson }}}
}"""


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def http(client: Client) -> Iterator[TestClient]:
    # a server with an API token: webhooks do not need it, they have their own auth
    with TestClient(create_app(client, token="api-token")) as opened:
        yield opened


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_json_body_becomes_the_default_event(http: TestClient, client: Client) -> None:
    client.create_webhook("deliveries")
    answer = http.post("/hooks/deliveries", json={"order": 42, "items": ["a", "b"]})
    assert answer.status_code == 202, answer.text
    event = client.store.get_event(answer.json()["id"])
    assert event is not None
    assert event.event == "webhook.received"
    assert event.resource_id == "legato.webhook.deliveries"
    assert event.payload == {"order": 42, "items": ["a", "b"]}
    # a body that is not an object is wrapped
    listed = http.post("/hooks/deliveries", json=[1, 2])
    assert listed.status_code == 202
    stored = client.store.get_event(listed.json()["id"])
    assert stored is not None and stored.payload == {"body": [1, 2]}


def test_a_form_body_query_and_headers_reach_the_template(http: TestClient, client: Client) -> None:
    client.create_webhook("contact", template=FORM)
    answer = http.post(
        "/hooks/contact?source=site",
        content=b"name=Zaphod+B&tag=a&tag=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 202, answer.text
    event = client.store.get_event(answer.json()["id"])
    assert event is not None and event.resource_id == "form.contact"
    assert event.payload == {
        "name": "Zaphod B",
        "tags": ["a", "b"],
        "source": "site",
        "raw": "name=Zaphod+B&tag=a&tag=b",
    }


def test_hmac_signatures_are_checked(
    http: TestClient, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.create_webhook("github", template=GITHUB, auth="hmac", secret_env="H12_GITHUB_SECRET")
    body = json.dumps({"ref": "refs/heads/main", "repository": {"full_name": "o/r"}}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "d-1",
    }
    unset = http.post("/hooks/github", content=body, headers=headers)
    assert unset.status_code == 503 and "H12_GITHUB_SECRET" in unset.json()["detail"]

    monkeypatch.setenv("H12_GITHUB_SECRET", "It's a Secret to Everybody")
    missing = http.post("/hooks/github", content=body, headers=headers)
    assert missing.status_code == 401 and "X-Hub-Signature-256" in missing.json()["detail"]
    wrong = http.post(
        "/hooks/github",
        content=body,
        headers={**headers, "X-Hub-Signature-256": sign("another secret", body)},
    )
    assert wrong.status_code == 403
    tampered = http.post(
        "/hooks/github",
        content=body + b" ",
        headers={**headers, "X-Hub-Signature-256": sign("It's a Secret to Everybody", body)},
    )
    assert tampered.status_code == 403
    good = http.post(
        "/hooks/github",
        content=body,
        headers={**headers, "X-Hub-Signature-256": sign("It's a Secret to Everybody", body)},
    )
    assert good.status_code == 202, good.text
    assert good.json() == {"id": "d-1"}
    event = client.store.get_event("d-1")
    assert event is not None and event.event == "github.push"
    assert event.resource_id == "github.repo.o/r"
    assert event.payload == {"ref": "refs/heads/main", "method": "POST"}
    assert [e.id for e in client.store.list_events(names=["github.*"])] == ["d-1"]


def test_a_shared_secret_is_checked(http: TestClient, client: Client) -> None:
    client.create_webhook("ci", auth="secret", secret="pl41n-s3cret")
    assert client.get_webhook("ci").to_dict()["secret"] == "********"
    assert http.post("/hooks/ci", json={}).status_code == 401
    assert http.post(
        "/hooks/ci", json={}, headers={"Authorization": "Bearer nope"}
    ).status_code == (403)
    wrong = http.post("/hooks/ci", json={}, headers={"X-Legato-Webhook-Secret": "nope"})
    assert wrong.status_code == 403 and "pl41n" not in wrong.text
    bearer = http.post("/hooks/ci", json={"a": 1}, headers={"Authorization": "Bearer pl41n-s3cret"})
    assert bearer.status_code == 202
    header = http.post(
        "/hooks/ci", json={"a": 2}, headers={"X-Legato-Webhook-Secret": "pl41n-s3cret"}
    )
    assert header.status_code == 202
    payloads = [e.payload for e in client.store.list_events(names=["webhook.received"])]
    assert sorted(p["a"] for p in payloads) == [1, 2]


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ('{"event": "x", ', "did not render JSON"),
        ('{"event": "x"}', "legato.resource.id"),
        ('{"event": "has space", "resource": {"legato.resource.id": "r"}}', "invalid event name"),
        ('{"event": "x", "resource": {"legato.resource.id": "r"}, "extra": 1}', "unknown keys"),
        (
            '{"event": "x", "resource": {"legato.resource.id": "r"}, "payload": {{ body.nope }}}',
            "failed",
        ),
        ("{{ ''.__class__ }}", "unsafe"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ cycler.__init__.__globals__ }}", "unsafe"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{% for i in range(10 ** 9) %}{% endfor %}", "MAX_RANGE"),
    ],
)
def test_a_bad_template_answers_400_with_the_reason(
    http: TestClient, client: Client, template: str, reason: str
) -> None:
    client.create_webhook("bad", template=template)
    answer = http.post("/hooks/bad", json={"a": 1})
    assert answer.status_code == 400, answer.text
    assert reason in answer.json()["detail"]
    assert client.store.list_events() == []


def test_unknown_and_disabled_slugs_answer_404(http: TestClient, client: Client) -> None:
    assert http.post("/hooks/nope", json={}).status_code == 404
    client.create_webhook("paused")
    client.set_webhook_enabled("paused", False)
    answer = http.post("/hooks/paused", json={})
    assert answer.status_code == 404 and "disabled" in answer.json()["detail"]
    client.set_webhook_enabled("paused", True)
    assert http.post("/hooks/paused", json={}).status_code == 202


def test_a_redelivery_with_the_same_id_is_stored_once(http: TestClient, client: Client) -> None:
    template = GITHUB.replace(
        '"id": {{ headers["x-github-delivery"] | tojson }}', '"id": {{ body.delivery | tojson }}'
    )
    client.create_webhook("github", template=template)
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "ignored"}
    body = {"delivery": "abc-1", "ref": "r", "repository": {"full_name": "o/r"}}
    first = http.post("/hooks/github", json=body, headers=headers)
    again = http.post("/hooks/github", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json() == {"id": "abc-1"}
    assert [e.id for e in client.store.list_events()] == ["abc-1"]


def test_a_body_over_the_limit_answers_413(http: TestClient, client: Client) -> None:
    client.create_webhook("big")
    answer = http.post("/hooks/big", content=b"x" * (1024 * 1024 + 1))
    assert answer.status_code == 413
    assert http.post("/hooks/big", content=b'"' + b"x" * 1000 + b'"').status_code == 202
    assert len(client.store.list_events()) == 1
