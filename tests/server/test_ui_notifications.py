"""The Notifications page: channels without their secrets, the outbox with its dead
letters, filtered by state and channel, everything escaped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from legato.client import Client
from legato.notify import enqueue_message
from legato.notify.channels import check_channel
from legato.records import utcnow
from legato.server import create_app

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def ui(client: Client) -> Iterator[TestClient]:
    with TestClient(create_app(client)) as http:
        yield http


def test_the_page_shows_dead_letters_and_never_secrets(ui: TestClient, client: Client) -> None:
    store = client.store
    config = check_channel("hook", "webhook", {"url": "https://x.test/h", "secret": "s3cr3t-v4lue"})
    store.put_notification_channel("hook", "webhook", config, overwrite=False, now=utcnow())
    store.put_notification_channel(
        "ops", "slack", check_channel("ops", "slack", {"url_env": "SLACK_URL"}), overwrite=False,
        now=utcnow(),
    )  # fmt: skip
    dead = enqueue_message(
        store, channel="hook", subject="<script>alert(1)</script>", body="b", idempotency_key="k1"
    )
    [claimed] = store.claim_due_deliveries(owner="t", now=utcnow(), lease_seconds=60)
    assert claimed.id == dead
    assert store.mark_dead(dead, owner="t", error="attempt 8: HTTP 500: <b>down</b>")
    enqueue_message(store, channel="ops", subject="still pending", body="b", idempotency_key="k2")

    page = ui.get("/notifications")
    assert page.status_code == 200
    text = page.text
    assert "s3cr3t-v4lue" not in text
    assert "secret=****" in text and "url=env:SLACK_URL" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert" not in text
    assert "attempt 8: HTTP 500: &lt;b&gt;down&lt;/b&gt;" in text
    assert "still pending" in text

    only_dead = ui.get("/notifications", params={"state": "dead"}).text
    assert "HTTP 500" in only_dead and "still pending" not in only_dead
    only_ops = ui.get("/notifications", params={"channel": "ops"}).text
    assert "still pending" in only_ops and "HTTP 500" not in only_ops
    wrong = ui.get("/notifications", params={"state": "<gone>"})
    assert wrong.status_code == 200 and "is not one of" in wrong.text
    assert "&lt;gone&gt;" in wrong.text
    assert '/notifications" >Notifications</a>' in ui.get("/").text  # in the navigation
