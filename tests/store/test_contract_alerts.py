"""Alert states contract: JSON states by (alert, key), found again when they expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from legato.store.base import Store

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_alert_states_are_put_read_replaced_and_deleted(store: Store) -> None:
    assert store.get_alert_state("a", "flow=etl") is None
    store.put_alert_state(
        "a", "flow=etl", {"count": 1, "runs": ["r1"]}, expires_at=at(60), now=at(0)
    )
    store.put_alert_state("a", "#rate:slack", {"sent": []}, expires_at=None, now=at(1))
    store.put_alert_state("b", "flow=etl", {"count": 7}, expires_at=at(30), now=at(2))
    state = store.get_alert_state("a", "flow=etl")
    assert state is not None
    assert (state.data, state.expires_at, state.updated) == (
        {"count": 1, "runs": ["r1"]},
        at(60),
        at(0),
    )
    store.put_alert_state("a", "flow=etl", {"count": 2}, expires_at=at(90), now=at(3))
    state = store.get_alert_state("a", "flow=etl")
    assert state is not None and state.data == {"count": 2} and state.expires_at == at(90)
    assert [s.key for s in store.list_alert_states("a")] == ["#rate:slack", "flow=etl"]

    assert store.due_alert_states(at(29)) == []
    assert [(s.alert, s.key) for s in store.due_alert_states(at(90))] == [
        ("b", "flow=etl"),
        ("a", "flow=etl"),
    ]
    assert [s.alert for s in store.due_alert_states(at(90), limit=1)] == ["b"]

    assert store.delete_alert_state("b", "flow=etl")
    assert not store.delete_alert_state("b", "flow=etl")
    assert store.delete_alert_states("a") == 2
    assert store.list_alert_states("a") == []
