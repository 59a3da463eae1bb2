"""Event retention: the scheduler's leader deletes events older than
LEGATO_EVENT_RETENTION when it takes the lead and then at most once an hour;
a follower deletes none."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from legato.client import Client
from legato.errors import ConfigurationError
from legato.records import utcnow
from legato.settings import event_retention_seconds
from legato.worker.scheduler import Scheduler

pytestmark = pytest.mark.usefixtures("backend")
RID = "legato.resource.id"


def emit_and_age(client: Client, name: str, age: float) -> None:
    """Emit an event, then wait until it is older than ``age`` seconds."""
    event_id = client.emit_event(name, {RID: "r"})
    stored = client.get_event(event_id)
    assert stored is not None and stored.received is not None
    while utcnow() - stored.received <= timedelta(seconds=age):
        time.sleep(0.02)


def names(client: Client) -> list[str]:
    return [event.event for event in client.list_events()]


def test_the_leader_prunes_old_events_at_most_once_an_hour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATO_EVENT_RETENTION", "0.2s")
    client = Client()
    emit_and_age(client, "old.one", 0.3)
    logged: list[str] = []
    leader = Scheduler(client, holder="w1", lease=30, log=logged.append)
    follower = Scheduler(client, holder="w2", lease=30)
    leader.tick()
    assert names(client) == []
    assert any("pruned 1 event(s)" in line for line in logged), logged

    emit_and_age(client, "second.one", 0.3)
    follower.tick()  # not the leader: prunes nothing
    leader._next_tick = 0  # tick again now: within the hour, no second prune
    leader.tick()
    assert names(client) == ["second.one"]
    leader._next_event_prune = 0.0  # as if the hour had passed
    leader._next_tick = 0
    leader.tick()
    assert names(client) == []


def test_a_bad_retention_is_logged_and_scheduling_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATO_EVENT_RETENTION", "a week")
    client = Client()
    client.emit_event("kept", {RID: "r"})
    logged: list[str] = []
    scheduler = Scheduler(client, holder="w1", lease=30, log=logged.append)
    scheduler.tick()
    assert scheduler.leading and names(client) == ["kept"]
    assert any("LEGATO_EVENT_RETENTION='a week' is not an age" in line for line in logged)


def test_the_retention_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEGATO_EVENT_RETENTION", raising=False)
    assert event_retention_seconds() == 7 * 86400
    monkeypatch.setenv("LEGATO_EVENT_RETENTION", "36h")
    assert event_retention_seconds() == 36 * 3600
    for bad in ("0d", "7", "-1d", "7y"):
        monkeypatch.setenv("LEGATO_EVENT_RETENTION", bad)
        with pytest.raises(ConfigurationError, match="LEGATO_EVENT_RETENTION"):
            event_retention_seconds()
