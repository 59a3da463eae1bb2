"""Variables contract: named JSON texts kept by name, on every backend."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from legato.records import StoredVariable
from legato.store.base import Store

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_variables_are_created_read_listed_and_deleted(store: Store) -> None:
    assert store.get_variable("crew") is None
    assert store.set_variable("crew", '["zaphod"]', tags=["a", "b"], overwrite=False, now=at(0))
    assert store.set_variable("answer", "42", overwrite=False, now=at(1))
    assert store.get_variable("crew") == StoredVariable(
        "crew", '["zaphod"]', ("a", "b"), at(0), at(0)
    )
    assert store.list_variables() == [
        StoredVariable("answer", "42", (), at(1), at(1)),
        StoredVariable("crew", '["zaphod"]', ("a", "b"), at(0), at(0)),
    ]
    assert store.delete_variable("crew") and not store.delete_variable("crew")
    assert store.get_variable("crew") is None
    assert [v.name for v in store.list_variables()] == ["answer"]


def test_a_taken_name_is_kept_unless_overwritten(store: Store) -> None:
    assert store.set_variable("answer", "42", tags=["x"], overwrite=False, now=at(0))
    assert not store.set_variable("answer", "43", overwrite=False, now=at(5))
    assert store.get_variable("answer") == StoredVariable("answer", "42", ("x",), at(0), at(0))
    assert store.set_variable("answer", '"forty-three"', overwrite=True, now=at(9))
    # the value and tags are replaced; the variable keeps its creation time
    assert store.get_variable("answer") == StoredVariable(
        "answer", '"forty-three"', (), at(0), at(9)
    )


def test_values_are_kept_exactly_as_given(store: Store) -> None:
    text = '{"b":[1,2.5,null,true],"a":"caf\\u00e9 \\u0000 \'quoted\'"}'
    store.set_variable("odd", text, overwrite=False, now=at(0))
    stored = store.get_variable("odd")
    assert stored is not None and stored.value == text


def test_racing_creators_of_one_name_make_exactly_one_winner(store: Store) -> None:
    wins: list[str] = []
    barrier = threading.Barrier(6)

    def create(value: str) -> None:
        barrier.wait()
        if store.set_variable("race", value, overwrite=False, now=at(0)):
            wins.append(value)

    threads = [threading.Thread(target=create, args=(f'"{n}"',)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    stored = store.get_variable("race")
    assert stored is not None and stored.value == wins[0]
