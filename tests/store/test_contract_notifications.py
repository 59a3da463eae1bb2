"""Notifications contract: channels as named records, and an outbox whose deliveries are
enqueued once per key, claimed by one sender at a time, one in flight per channel, in order."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from legato.store.base import Store

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def enqueue(store: Store, key: str, channel: str = "ops", at: datetime = T0) -> int:
    return store.enqueue_delivery(
        channel=channel,
        idempotency_key=key,
        subject=f"subject {key}",
        body=f"body {key}",
        payload={"key": key, "n": [1, 2]},
        now=at,
        group_key="g1",
    )


def test_channels_are_named_records(store: Store) -> None:
    assert store.put_notification_channel(
        "ops", "slack", {"url_env": "SLACK_URL"}, overwrite=False, now=T0
    )
    assert not store.put_notification_channel(
        "ops", "teams", {"url_env": "X"}, overwrite=False, now=T0
    )
    got = store.get_notification_channel("ops")
    assert got is not None
    assert (got.name, got.type, dict(got.config), got.created) == (
        "ops",
        "slack",
        {"url_env": "SLACK_URL"},
        T0,
    )
    later = T0 + timedelta(minutes=1)
    assert store.put_notification_channel(
        "ops", "teams", {"url_env": "TEAMS"}, overwrite=True, now=later
    )
    assert store.put_notification_channel("alpha", "webhook", {}, overwrite=False, now=T0)
    replaced = store.get_notification_channel("ops")
    assert replaced is not None
    assert (replaced.type, replaced.created, replaced.updated) == ("teams", T0, later)
    assert [c.name for c in store.list_notification_channels()] == ["alpha", "ops"]
    assert store.delete_notification_channel("ops")
    assert not store.delete_notification_channel("ops")
    assert store.get_notification_channel("ops") is None


def test_a_key_enqueued_twice_is_one_delivery(store: Store) -> None:
    first = enqueue(store, "run-1:failed")
    assert enqueue(store, "run-1:failed") == first
    assert [d.id for d in store.list_deliveries()] == [first]
    got = store.get_delivery(first)
    assert got is not None
    assert (got.channel, got.subject, got.body, got.state, got.attempts, got.group_key) == (
        "ops",
        "subject run-1:failed",
        "body run-1:failed",
        "pending",
        0,
        "g1",
    )
    assert dict(got.payload) == {"key": "run-1:failed", "n": [1, 2]}
    assert got.next_attempt_at == T0 and got.created == T0
    assert store.get_delivery(first + 1000) is None


def test_one_channel_has_one_delivery_in_flight_in_order(store: Store) -> None:
    a1, a2 = enqueue(store, "a1", "a"), enqueue(store, "a2", "a")
    b1 = enqueue(store, "b1", "b")
    claimed = store.claim_due_deliveries(owner="s1", now=T0, lease_seconds=30)
    assert sorted(d.id for d in claimed) == [a1, b1]
    assert all(d.state == "sending" and d.attempts == 1 for d in claimed)
    # Held: nothing more for anyone, not a2 (its channel's first is in flight).
    assert store.claim_due_deliveries(owner="s2", now=T0, lease_seconds=30) == []
    # a1 fails and waits to retry: a2 still waits behind it.
    later = T0 + timedelta(seconds=10)
    assert store.mark_retry(a1, owner="s1", next_attempt_at=later, error="HTTP 503")
    assert not store.mark_retry(a1, owner="s2", next_attempt_at=later, error="not mine")
    assert store.claim_due_deliveries(owner="s1", now=T0, lease_seconds=30) == []
    again = store.claim_due_deliveries(owner="s1", now=later, lease_seconds=30)
    assert [(d.id, d.attempts, d.last_error) for d in again] == [(a1, 2, "HTTP 503")]
    assert store.mark_delivered(a1, owner="s1", now=later)
    assert [d.id for d in store.claim_due_deliveries(owner="s1", now=later, lease_seconds=30)] == [
        a2
    ]
    assert store.mark_dead(a2, owner="s1", error="gave up")
    assert store.mark_delivered(b1, owner="s1", now=later)
    dead = store.list_deliveries(state="dead")
    assert [(d.id, d.last_error) for d in dead] == [(a2, "gave up")]
    assert [d.id for d in store.list_deliveries(channel="a")] == [a2, a1]
    delivered = store.get_delivery(a1)
    assert delivered is not None and delivered.delivered_at == later
    assert [d.id for d in store.list_deliveries(state="delivered", channel="b")] == [b1]
    assert [d.id for d in store.list_deliveries(limit=1)] == [b1]


def test_an_expired_lease_lets_another_sender_take_over(store: Store) -> None:
    one = enqueue(store, "k")
    assert [d.id for d in store.claim_due_deliveries(owner="s1", now=T0, lease_seconds=5)] == [one]
    assert (
        store.claim_due_deliveries(owner="s2", now=T0 + timedelta(seconds=4), lease_seconds=5) == []
    )
    taken = store.claim_due_deliveries(owner="s2", now=T0 + timedelta(seconds=6), lease_seconds=5)
    assert [(d.id, d.attempts) for d in taken] == [(one, 2)]
    assert not store.mark_delivered(one, owner="s1", now=T0)  # the first lost it
    assert store.mark_delivered(one, owner="s2", now=T0)


def test_racing_senders_never_claim_one_delivery_twice(store: Store) -> None:
    ids = [enqueue(store, f"k{n}", channel=f"c{n % 10}") for n in range(60)]
    claims: list[int] = []
    lock = threading.Lock()

    def sender(name: str) -> None:
        now = T0
        for _ in range(40):
            got = store.claim_due_deliveries(owner=name, now=now, lease_seconds=600, limit=3)
            for d in got:
                assert store.mark_delivered(d.id, owner=name, now=now)
            with lock:
                claims.extend(d.id for d in got)

    threads = [threading.Thread(target=sender, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claims) == ids
