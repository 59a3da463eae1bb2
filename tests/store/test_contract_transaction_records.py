"""Keyed transaction records contract: one record per key, first commit wins, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from legato.records import TransactionRecord
from legato.store.base import Store

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def rec(
    key: str, run: str = "run-1", seconds: float = 0, payload: bytes = b"\x00p"
) -> TransactionRecord:
    return TransactionRecord(key, run, T0 + timedelta(seconds=seconds), payload)


def test_records_are_saved_together_read_and_deleted(store: Store) -> None:
    assert store.get_transaction_record("a") is None
    store.save_transaction_records([rec("a", payload=b"\x00\xffA"), rec("b", payload=b"B")])
    assert store.get_transaction_record("a") == rec("a", payload=b"\x00\xffA")
    assert store.get_transaction_record("b") == rec("b", payload=b"B")
    assert store.delete_transaction_record("a") and not store.delete_transaction_record("a")
    assert store.get_transaction_record("a") is None
    assert store.get_transaction_record("b") is not None
    store.save_transaction_records([])  # nothing to do


def test_a_committed_key_keeps_its_first_record(store: Store) -> None:
    store.save_transaction_records([rec("k", run="first", payload=b"1")])
    store.save_transaction_records(
        [rec("k", run="second", seconds=5, payload=b"2"), rec("other", payload=b"3")]
    )
    assert store.get_transaction_record("k") == rec("k", run="first", payload=b"1")
    assert store.get_transaction_record("other") == rec("other", payload=b"3")


def test_keys_are_compared_exactly(store: Store) -> None:
    store.save_transaction_records([rec("Key é")])
    assert store.get_transaction_record("key é") is None
    assert store.get_transaction_record("Key é") == rec("Key é")
