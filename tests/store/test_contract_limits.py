"""Global limits contract: concurrency and rate limits, on every backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from legato.records import Limit, Notification
from legato.store import open_store
from legato.store.base import Store
from legato.store.notifications import LIMIT_SLOTS_FREED
from postgres_server import PostgresServer, require_server

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TTL = 30.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def take(store: Store, name: str, holder: str, seconds: float = 0) -> bool:
    return store.acquire_limit_slot(name, holder, now=at(seconds), ttl_seconds=TTL)


def test_limits_are_set_listed_changed_and_deleted(store: Store) -> None:
    assert store.set_limit("db", 2, now=at(0)) == Limit("db", 2)
    assert store.set_limit("api", 10, per_seconds=60, now=at(0)) == Limit("api", 10, 60.0)
    take(store, "db", "t1")
    assert store.list_limits(now=at(1)) == [Limit("api", 10, 60.0, 0), Limit("db", 2, None, 1)]
    assert store.list_limits(now=at(1), names=["db", "nope"]) == [Limit("db", 2, None, 1)]
    assert store.list_limits(now=at(1), names=[]) == []
    store.set_limit("db", 5, now=at(2))
    assert store.list_limits(now=at(3), names=["db"])[0].slots == 5
    assert store.delete_limit("db") and not store.delete_limit("db")
    assert [limit.name for limit in store.list_limits(now=at(4))] == ["api"]


def test_a_concurrency_limit_hands_out_its_slots_and_takes_them_back(store: Store) -> None:
    store.set_limit("db", 2, now=at(0))
    assert take(store, "db", "t1") and take(store, "db", "t2")
    assert not take(store, "db", "t3")
    assert take(store, "db", "t1")  # a holder asking again keeps its slot
    store.release_limit_slots("t1")
    assert take(store, "db", "t3")
    assert not take(store, "nope", "t4")  # no such limit


def test_a_slot_that_is_not_renewed_frees_itself(store: Store) -> None:
    store.set_limit("db", 1, now=at(0))
    assert take(store, "db", "crashed", 0)
    assert not take(store, "db", "next", TTL - 1)
    store.renew_limit_slots(["alive"], now=at(10), ttl_seconds=TTL)  # someone else's renewal
    assert take(store, "db", "next", TTL + 1)  # the crashed holder's lease ran out
    store.renew_limit_slots(["next"], now=at(TTL + 20), ttl_seconds=TTL)
    assert not take(store, "db", "third", TTL + 45)  # renewed: still held
    assert store.list_limits(now=at(TTL + 45))[0].active == 1


def test_a_rate_limit_counts_starts_in_its_window(store: Store) -> None:
    store.set_limit("api", 2, per_seconds=10, now=at(0))
    assert take(store, "api", "a", 0) and take(store, "api", "b", 1)
    assert not take(store, "api", "c", 5)
    store.release_limit_slots("a")  # releasing does not give a start back
    assert not take(store, "api", "c", 9)
    assert take(store, "api", "c", 10.5)  # a's start left the window
    assert not take(store, "api", "d", 10.6)


def test_releasing_wakes_waiters(store: Store) -> None:
    store.set_limit("db", 1, now=at(0))
    take(store, "db", "t1")
    with store.listen([LIMIT_SLOTS_FREED]) as listener:
        store.release_limit_slots("nobody")  # held nothing: no news
        assert listener.wait(0.3) == []
        store.release_limit_slots("t1")
        assert listener.wait(10) == [Notification(LIMIT_SLOTS_FREED, "")]


def test_racing_threads_never_exceed_a_limit(store: Store) -> None:
    store.set_limit("db", 3, now=at(0))
    won: list[str] = []
    start = threading.Barrier(10)

    def contend(holder: str) -> None:
        start.wait()
        if take(store, "db", holder):
            won.append(holder)

    threads = [threading.Thread(target=contend, args=(f"h{n}",)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 3


WORKER = """
import json, sys, time, uuid
from datetime import UTC, datetime
from legato.store import open_store

store = open_store(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
won = 0
for _ in range(20):
    if store.acquire_limit_slot("db", uuid.uuid4().hex, now=datetime.now(UTC), ttl_seconds=60):
        won += 1
store.close()
print(json.dumps(won))
"""


@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "shared.db"
        open_store(str(path)).close()
        yield str(path)
        return
    server: PostgresServer = require_server()
    with server.database() as url:
        yield url


def test_separate_processes_never_exceed_a_limit(store_target: str) -> None:
    store = open_store(store_target)
    store.set_limit("db", 5, now=datetime.now(UTC))
    start_at = time.time() + 1.5
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, store_target, str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    results = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    assert sum(json.loads(out) for out, _ in results) == 5
    assert store.list_limits(now=datetime.now(UTC))[0].active == 5
    store.close()
