"""Webhooks contract: definitions kept by slug, on every backend."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from legato._webhook_records import Webhook
from legato.store.base import Store

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


HOOK = Webhook(
    slug="github",
    template='{"event": "x", "resource": {"legato.resource.id": "y"}}',
    auth="hmac",
    secret_env="GITHUB_SECRET",
    description="pushes",
)


def test_webhooks_are_created_read_listed_and_deleted(store: Store) -> None:
    assert store.get_webhook("github") is None
    assert store.put_webhook(HOOK, overwrite=False, now=at(0))
    plain = Webhook(slug="alpha", template="{}", auth="secret", secret="s3cret")
    assert store.put_webhook(plain, overwrite=False, now=at(1))
    assert store.get_webhook("github") == replace(HOOK, created=at(0), updated=at(0))
    assert store.list_webhooks() == [
        replace(plain, created=at(1), updated=at(1)),
        replace(HOOK, created=at(0), updated=at(0)),
    ]
    assert store.delete_webhook("github") and not store.delete_webhook("github")
    assert [w.slug for w in store.list_webhooks()] == ["alpha"]


def test_a_taken_slug_is_kept_unless_overwritten(store: Store) -> None:
    assert store.put_webhook(HOOK, overwrite=False, now=at(0))
    other = replace(HOOK, template="{{ body | tojson }}", auth="none", secret_env=None)
    assert not store.put_webhook(other, overwrite=False, now=at(5))
    assert store.get_webhook("github") == replace(HOOK, created=at(0), updated=at(0))
    assert store.put_webhook(other, overwrite=True, now=at(9))
    # replaced, keeping its creation time
    assert store.get_webhook("github") == replace(other, created=at(0), updated=at(9))


def test_webhooks_are_enabled_and_disabled(store: Store) -> None:
    assert not store.set_webhook_enabled("github", False, now=at(1))
    store.put_webhook(HOOK, overwrite=False, now=at(0))
    assert store.set_webhook_enabled("github", False, now=at(2))
    found = store.get_webhook("github")
    assert found is not None and not found.enabled and found.updated == at(2)
    assert store.set_webhook_enabled("github", True, now=at(3))
    found = store.get_webhook("github")
    assert found is not None and found.enabled
