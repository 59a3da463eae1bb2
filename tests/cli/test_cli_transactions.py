"""``legato db forget-transaction KEY``: the one way keyed transaction records go."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from legato.records import TransactionRecord
from legato.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from conftest import Cli


def test_forget_transaction_deletes_the_record_and_prune_keeps_it(cli: Cli) -> None:
    cli.home.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(cli.home / "legato.db")
    try:
        ended = datetime(2020, 1, 1, tzinfo=UTC)
        store.save_transaction_records([TransactionRecord("load-1", "run-1", ended, b"x")])
        pruned = cli("db", "prune", "--older-than", "1d")
        assert pruned.code == 0, str(pruned)
        assert store.get_transaction_record("load-1") is not None

        done = cli("db", "forget-transaction", "load-1")
        assert done.code == 0, str(done)
        assert "forgot keyed transaction 'load-1'" in done.stdout
        assert store.get_transaction_record("load-1") is None

        again = cli("db", "forget-transaction", "load-1")
        assert again.code != 0
        assert "no keyed transaction 'load-1' has committed" in again.stderr
    finally:
        store.close()
