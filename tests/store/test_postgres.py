"""What only the PostgreSQL backend promises: schema, migrations, values, fencing, processes.

Runs against the session's real server (tests/postgres_server.py); each test
gets its own database. URLs and secrets: test_postgres_secrets.py.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from _waiting import release_together, wait_until
from legato.errors import (
    RunOwnershipLost,
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
)
from legato.records import ErrorInfo, FlowRun, LogRecord, RunOwner, StoredResult, TaskRun
from legato.states import StateType
from legato.store import open_store
from legato.store.postgres import PostgresStore, migrate
from legato.store.postgres.sql import LATEST_VERSION, MIGRATIONS, QUERIES, Migration
from postgres_server import PostgresServer, require_server

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def server() -> PostgresServer:
    return require_server()


@pytest.fixture
def url(server: PostgresServer) -> Iterator[str]:
    """A database with the legato schema (a copy of the template)."""
    with server.database() as created:
        yield created


@pytest.fixture
def empty_url(server: PostgresServer) -> Iterator[str]:
    """A database without any legato table."""
    with server.database(empty=True) as created:
        yield created


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(url)
    try:
        yield opened
    finally:
        opened.close()


def make_run(**changes: Any) -> FlowRun:
    fields: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "flow_name": "f",
        "name": "n",
        "state": StateType.PENDING,
    }
    fields.update(changes)
    return FlowRun(**fields)


def started_run(store: PostgresStore) -> tuple[FlowRun, RunOwner]:
    run = make_run()
    store.create_flow_run(run)
    owner = RunOwner(token=uuid.uuid4().hex, host="h", pid=os.getpid())
    running = store.start_flow_run(run.id, owner, from_states=[StateType.PENDING], now=NOW)
    assert running is not None
    return running, owner


def make_task(run: FlowRun, key: str = "t[0]", **changes: Any) -> TaskRun:
    fields: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "flow_run_id": run.id,
        "call_key": key,
        "task_name": "t",
        "name": key,
        "state": StateType.COMPLETED,
        "attempts": 1,
        "start_time": NOW,
        "end_time": NOW,
    }
    fields.update(changes)
    return TaskRun(**fields)


def sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement, params or None)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


# --- schema and migrations -------------------------------------------------------

_DESCRIBE = {
    "relations": """
        SELECT c.relname, c.relkind, c.reloptions FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() ORDER BY c.relname
    """,
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
            a.attidentity, a.attgenerated, coll.collname, pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute AS a
        JOIN pg_class AS c ON c.oid = a.attrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        LEFT JOIN pg_collation AS coll ON coll.oid = a.attcollation
        LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = current_schema() AND c.relkind = 'r'
            AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum
    """,
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
        ORDER BY 1, 2
    """,
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = current_schema() ORDER BY 1, 2
    """,
    "functions": """
        SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc AS p
        WHERE p.pronamespace = current_schema()::regnamespace ORDER BY 1
    """,
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
        WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace
        ORDER BY 1, 2
    """,
    "sequences": """
        SELECT sequencename, data_type::text, start_value, increment_by, cycle
        FROM pg_sequences WHERE schemaname = current_schema() ORDER BY 1
    """,
}


def describe_schema(url: str) -> dict[str, list[Any]]:
    """The schema as the catalogs see it: tables, columns in order, keys, indexes."""
    return {what: sql(url, query) for what, query in _DESCRIBE.items()}


def test_fresh_schema_equals_all_migrations_in_order(server: PostgresServer) -> None:
    with server.database(empty=True) as fresh, server.database(empty=True) as migrated:
        store = PostgresStore(fresh)
        assert store.migrated == [LATEST_VERSION]
        store.close()
        with psycopg.connect(migrated) as conn:
            for migration in MIGRATIONS:
                for statement in migration.statements:
                    conn.execute(statement)  # type: ignore[arg-type]
                conn.execute(QUERIES["record_migration"], (migration.version,))
                conn.commit()
        store = PostgresStore(migrated)
        assert store.migrated == []  # nothing left to do
        assert store.schema_version() == LATEST_VERSION
        store.close()
        described = describe_schema(fresh)
        assert described == describe_schema(migrated)
        tables = {name for name, kind, _ in described["relations"] if kind == "r"}
        assert {"flow_runs", "task_runs", "logs", "task_cache", "run_inputs"} <= tables


def test_pending_migrations_are_applied_on_open(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PostgresStore(url)
    run = make_run()
    store.create_flow_run(run)
    store.close()

    extra = Migration(LATEST_VERSION + 1, "extra", ["CREATE TABLE extra (x integer)"])
    monkeypatch.setattr(migrate, "MIGRATIONS", [*MIGRATIONS, extra])
    monkeypatch.setattr(migrate, "LATEST_VERSION", extra.version)
    store = PostgresStore(url)
    try:
        assert store.migrated == [extra.version]
        assert store.schema_version() == extra.version
        assert store.get_flow_run(run.id) == run
    finally:
        store.close()
    assert sql(url, "SELECT count(*) FROM extra") == [(0,)]
    again = PostgresStore(url)
    assert again.migrated == []
    again.close()


def test_tags_of_runs_stored_before_the_tag_table_are_back_filled(empty_url: str) -> None:
    # A store at the version before flow_run_tags, with runs written as that
    # version wrote them (their tags only in the jsonb column).
    tags_version = next(m.version for m in MIGRATIONS if m.name == "flow_run_tags")
    with psycopg.connect(empty_url) as conn:
        for migration in MIGRATIONS[: tags_version - 1]:
            for statement in migration.statements:
                conn.execute(statement)  # type: ignore[arg-type]
            conn.execute(QUERIES["record_migration"], (migration.version,))
        stored = [
            ("a", 1, '["x", "y"]'),
            ("b", 2, '["x", "x"]'),  # a tag twice: one row
            ("c", 3, None),
            ("d", 3, "[]"),
            ("e", 4, '["x"]'),
            ("f", 4, '["x", "é✓"]'),  # same time as e, stored after it: listed first
        ]
        for run_id, second, tags in stored:
            conn.execute(
                "INSERT INTO flow_runs (id, state, flow_name, name, created, parameters, tags)"
                " VALUES (%s, 'completed', 'f', 'n', %s, '{}', %s::jsonb)",
                (run_id, NOW + timedelta(seconds=second), tags),
            )
        conn.commit()

    store = PostgresStore(empty_url)
    try:
        assert store.migrated == list(range(tags_version, LATEST_VERSION + 1))
        assert [run.id for run in store.list_flow_runs()] == ["f", "e", "d", "c", "b", "a"]
        assert [run.id for run in store.list_flow_runs(tag="x")] == ["f", "e", "b", "a"]
        assert [run.id for run in store.list_flow_runs(tag="y")] == ["a"]
        assert [run.id for run in store.list_flow_runs(tag="é✓")] == ["f"]
        at_4 = NOW + timedelta(seconds=4)
        assert [run.id for run in store.list_flow_runs(tag="x", created_before=at_4)] == ["b", "a"]
        # A run stored now at the same time as e and f comes before both, as it
        # does without a tag.
        store.create_flow_run(make_run(id="g", tags=("x",), created=at_4))
        assert [run.id for run in store.list_flow_runs(tag="x", limit=3)] == ["g", "f", "e"]
        assert [run.id for run in store.list_flow_runs(limit=3)] == ["g", "f", "e"]
    finally:
        store.close()
    assert sql(empty_url, "SELECT run_id, tag FROM flow_run_tags ORDER BY seq, tag") == [
        ("a", "x"),
        ("a", "y"),
        ("b", "x"),
        ("e", "x"),
        ("f", "x"),
        ("f", "é✓"),
        ("g", "x"),
    ]
    assert sql(
        empty_url,
        "SELECT count(*) FROM flow_run_tags AS t JOIN flow_runs AS f ON f.id = t.run_id"
        " WHERE (t.created, t.seq) <> (f.created, f.seq)",
    ) == [(0,)]


def test_failed_migration_changes_nothing(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = Migration(LATEST_VERSION + 1, "broken", ["CREATE TABLE half (x integer); SELECT 1/0"])
    monkeypatch.setattr(migrate, "MIGRATIONS", [*MIGRATIONS, broken])
    monkeypatch.setattr(migrate, "LATEST_VERSION", broken.version)
    with pytest.raises(StoreError, match="division by zero"):
        PostgresStore(url)
    assert sql(url, "SELECT to_regclass('half')") == [(None,)]
    assert sql(url, "SELECT max(version) FROM schema_migrations") == [(LATEST_VERSION,)]


def test_database_from_newer_legato_is_refused(url: str) -> None:
    sql(url, QUERIES["record_migration"], (LATEST_VERSION + 1,))
    with pytest.raises(SchemaVersionError, match="upgrade legato"):
        PostgresStore(url)


def test_foreign_tables_named_like_ours_are_refused(empty_url: str) -> None:
    sql(empty_url, "CREATE TABLE flow_runs (body text)")
    with pytest.raises(StoreError, match="not a legato store"):
        PostgresStore(empty_url)


def test_search_path_from_the_url_puts_legato_in_its_own_schema(empty_url: str) -> None:
    sql(empty_url, "CREATE SCHEMA legato")
    in_schema = empty_url + "?options=-csearch_path%3Dlegato"
    store = open_store(in_schema)
    try:
        run = make_run()
        store.create_flow_run(run)
        assert store.get_flow_run(run.id) == run
    finally:
        store.close()
    assert sql(empty_url, "SELECT to_regclass('legato.flow_runs') IS NOT NULL") == [(True,)]
    assert sql(empty_url, "SELECT to_regclass('public.flow_runs')") == [(None,)]


_OPEN_AT_ONCE = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from legato.store.postgres import PostgresStore
    url, barrier = sys.argv[1], Path(sys.argv[2])
    (barrier / f"ready-{os.getpid()}").touch()  # then wait for the others (release_together)
    deadline = time.monotonic() + 60
    while not (barrier / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    store = PostgresStore(url)
    print(json.dumps({"migrated": store.migrated, "version": store.schema_version()}))
    store.close()
    """
)


def test_ten_processes_opening_a_fresh_database_migrate_once(
    empty_url: str, tmp_path: Path
) -> None:
    barrier = tmp_path / "barrier"  # every interpreter imports first, then all open at once
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT_ONCE, empty_url, str(barrier)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
        for _ in range(10)
    ]
    release_together(barrier, len(procs))
    outputs = [proc.communicate(timeout=60) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    reports = [json.loads(out) for out, _ in outputs]
    assert all(report["version"] == LATEST_VERSION for report in reports)
    did = [report["migrated"] for report in reports if report["migrated"]]
    assert did == [[LATEST_VERSION]]  # exactly one process created the schema
    assert sql(empty_url, "SELECT version FROM schema_migrations") == [(LATEST_VERSION,)]


# --- queries ---------------------------------------------------------------------


def test_queries_on_large_tables_use_indexes(store: PostgresStore, url: str) -> None:
    # Enough rows (with fresh statistics) that a sequential scan would lose.
    sql(
        url,
        """
        INSERT INTO flow_runs (id, state, flow_name, name, created, parameters, parent_run_id,
            parent_call_key, tags)
        SELECT md5(i::text), (ARRAY['completed', 'failed', 'running'])[1 + i % 3],
            'flow' || (i % 50), 'n', now() - i * interval '1 second', '{}',
            CASE WHEN i % 10 = 0 THEN md5((i + 1)::text) END, 'sub[0]',
            CASE WHEN i % 4 = 0 THEN '["nightly"]'::jsonb
                WHEN i % 1000 = 1 THEN '["incident", "x"]'::jsonb END
        FROM generate_series(1, 20000) AS i;
        INSERT INTO flow_run_tags (created, seq, run_id, tag)
        SELECT f.created, f.seq, f.id, t.tag
        FROM flow_runs AS f, jsonb_array_elements_text(f.tags) AS t (tag);
        INSERT INTO task_runs (flow_run_id, call_key, id, task_name, name, state, cache_key)
        SELECT md5((i % 2000)::text), 't[' || i || ']', md5('t' || i), 't', 'n', 'completed',
            'k' || i
        FROM generate_series(1, 20000) AS i;
        INSERT INTO task_cache (cache_key, task_run_id, created)
        SELECT 'k' || i, md5('t' || i), now() FROM generate_series(1, 20000) AS i;
        INSERT INTO logs (flow_run_id, task_run_id, timestamp, level, logger, message)
        SELECT md5((i % 2000)::text), md5('t' || i), now(), 20, 'l', 'm'
        FROM generate_series(1, 20000) AS i;
        ANALYZE
        """,
    )
    md5 = sql(url, "SELECT md5('7')")[0][0]  # a run id, task run id and log owner above
    samples: dict[str, tuple[Any, ...]] = {
        "match_run_ids": (md5[:3], md5[:2] + chr(ord(md5[2]) + 1), 2),
        "match_run_ids_unbounded": (md5[:3], 2),
        "get_flow_run": (md5,),
        "find_child_run": (md5, "sub[0]"),
        "get_task_run": (md5,),
        "find_task_run": (md5, "t[7]"),
        "list_task_runs": (md5,),
        "count_task_runs": (md5,),
        "get_cached_result": ("k7", NOW),
        "read_logs": (md5, 0, 100),
        "read_task_logs": (md5, 0, md5, 100),
    }
    # The rows above were created in the last 20000 seconds before the real now.
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    samples["flow_run_stats"] = (hour_ago, 300, hour_ago)
    samples["flow_duration_stats"] = (hour_ago, 10)
    plans = {name: _plan(url, QUERIES[name], params) for name, params in samples.items()}
    filters: tuple[tuple[str, tuple[Any, ...]], ...] = (
        ("", ()),
        ("flow_name = %s", ("flow7",)),
        ("parent_run_id = %s", (md5,)),
        (QUERIES["where_created_before"], (hour_ago,)),
        (
            f"flow_name = %s AND {QUERIES['where_created_after']}"
            f" AND {QUERIES['where_created_before']}",
            ("flow7", hour_ago - timedelta(hours=1), hour_ago),
        ),
    )
    for where, params in filters:
        listed = QUERIES["list_flow_runs"].replace("{where}", f"WHERE {where}" if where else "")
        plans[f"list_flow_runs {where}"] = _plan(url, listed, (*params, 50))
        in_states = QUERIES["list_flow_runs_in_states"].replace(
            "{and_where}", f" AND {where}" if where else ""
        )
        plans[f"list_flow_runs_in_states {where}"] = _plan(
            url, in_states, (["failed", "running"], *params, 50, 50)
        )
    # A tag: the runs that carry it, walked newest first on the flow_run_tags index,
    # unless another filter is narrower (the children of one run: the parent index,
    # each child's tag looked up by key).
    tagged: tuple[tuple[str, str, str, tuple[Any, ...]], ...] = (
        ("nightly", "", "", ()),
        ("incident", "", "", ()),
        ("nightly", QUERIES["where_created_before"], "", (hour_ago,)),
        (
            "nightly",
            f"{QUERIES['where_created_after']} AND {QUERIES['where_created_before']}",
            "",
            (hour_ago - timedelta(hours=1), hour_ago),
        ),
        ("incident", QUERIES["where_created_before"], "flow_name = %s", (hour_ago, "flow1")),
        ("nightly", "", "parent_run_id = %s", (md5,)),
    )
    for tag, ranges, where, params in tagged:
        listed = QUERIES["list_tagged_flow_runs"].replace(
            "{tag_range}", f"AND {ranges}" if ranges else ""
        )
        name = f"list_tagged_flow_runs {tag} {ranges} {where}"
        plans[name] = _plan(
            url, listed.replace("{where}", f"WHERE {where}" if where else ""), (tag, *params, 50)
        )
        in_states = QUERIES["list_tagged_flow_runs_in_states"].replace(
            "{tag_range}", f"AND {ranges}" if ranges else ""
        )
        plans[f"{name} in_states"] = _plan(
            url,
            in_states.replace("{and_where}", f" AND {where}" if where else ""),
            (["failed", "running"], tag, *params, 50, 50),
        )
    for name, plan in plans.items():
        assert "Seq Scan" not in plan, f"{name} scans a whole table:\n{plan}"
        if name.startswith("list_tagged") and ">=" not in name and "parent" not in name:
            assert "Index Scan Backward using flow_run_tags_tag" in plan, f"{name}:\n{plan}"
            assert "flow_runs_pkey" in plan, f"{name}:\n{plan}"
            if "in_states" not in name:
                assert "Sort" not in plan, f"{name} sorts:\n{plan}"
            continue
        if name.startswith("list_tagged") and "parent" in name:
            assert "flow_runs_parent" in plan and "flow_run_tags_pkey" in plan, f"{name}:\n{plan}"
        # A range closed on both sides may instead collect its few rows from the
        # index and sort them: the range bounds the sort.
        if name.startswith("list_flow_runs") and "parent" not in name and ">=" not in name:
            # The newest few come from walking an index backwards; only the
            # merge of the per-state answers (limit x states rows) is sorted.
            assert "Index Scan Backward" in plan, f"{name}:\n{plan}"
            if "in_states" not in name:
                assert "Sort" not in plan, f"{name} sorts:\n{plan}"
    assert "flow_runs_pkey" in plans["match_run_ids"]


def _plan(url: str, query: str, params: tuple[Any, ...]) -> str:
    return "\n".join(row[0] for row in sql(url, "EXPLAIN " + query, params))


def test_prefix_match_beyond_ascii(store: PostgresStore) -> None:
    ids = ["é1" + uuid.uuid4().hex, "é\U0010ffff" + uuid.uuid4().hex, "ê" + uuid.uuid4().hex]
    ids.append("\ud7ff" + uuid.uuid4().hex)  # the last code point before the surrogates
    for run_id in ids[:3]:
        store.create_flow_run(make_run(id=run_id))
    assert sorted(store.match_run_ids("é", limit=10)) == sorted(ids[:2])
    assert store.match_run_ids("é\U0010ffff", limit=10) == [ids[1]]
    assert store.match_run_ids("\U0010ffff", limit=10) == []
    assert store.match_run_ids("\ud7ff") == []
    assert store.match_run_ids("\udcff") == []  # a byte argv could not decode
    with pytest.raises(StoreError, match="not valid text"):
        store.get_flow_run("\udcff")
    assert len(store.match_run_ids("", limit=10)) == 3


def test_each_store_call_is_one_statement(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One statement, so one round trip and atomic on its own: the writes that
    # touch several tables (a task run with its cache entry and logs, a run's
    # end with its logs) are single statements with CTEs.
    statements: list[str] = []
    execute = psycopg.Cursor.execute

    def counting(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        statements.append(str(query))
        return execute(self, query, params, **kwargs)

    run, owner = started_run(store)
    result = StoredResult("pickle", b"x")
    log = LogRecord(flow_run_id=run.id, timestamp=NOW, level=20, message="m")
    monkeypatch.setattr(psycopg.Cursor, "execute", counting)
    calls: list[tuple[str, Any]] = [
        ("plain task run", lambda: store.record_task_run(make_task(run, "a[0]"), owner.token)),
        (
            "task run with cache entry and logs",
            lambda: store.record_task_run(
                make_task(run, "b[0]", cache_key="k"), owner.token, result=result, logs=[log]
            ),
        ),
        ("heartbeat", lambda: store.heartbeat_flow_run(run.id, owner.token, NOW)),
        ("cancel request", lambda: store.request_cancellation(run.id, now=NOW)),
        ("rollback marks", lambda: store.mark_rolled_back(["x"], owner.token)),
        (
            "finish with logs",
            lambda: store.finish_flow_run(
                run.id, owner.token, state=StateType.COMPLETED, now=NOW, logs=[log]
            ),
        ),
        (
            "restart",
            lambda: store.start_flow_run(run.id, owner, from_states=[StateType.COMPLETED], now=NOW),
        ),
        (
            "list in states",
            lambda: store.list_flow_runs(states=[StateType.RUNNING, StateType.FAILED]),
        ),
        ("tagged run", lambda: store.create_flow_run(make_run(tags=("a", "b")))),
        (
            "tagged queued run",
            lambda: store.create_flow_run(
                make_run(tags=("a",), state=StateType.SCHEDULED, work_queue="q")
            ),
        ),
        (
            "tagged run once",
            lambda: store.create_flow_run_once(make_run(tags=("a",), idempotency_key="k")),
        ),
        (
            "list a tag in states",
            lambda: store.list_flow_runs(tag="a", states=[StateType.RUNNING, StateType.FAILED]),
        ),
    ]
    for what, call in calls:
        statements.clear()
        call()
        assert len(statements) == 1, f"{what}: {statements}"
    monkeypatch.undo()
    assert store.get_cached_result("k", NOW) is not None
    assert len(store.read_logs(run.id)) == 2
    assert len(store.list_flow_runs(tag="a")) == 3
    assert len(store.list_flow_runs(tag="b")) == 1


# --- values SQLite takes and PostgreSQL refuses, or rewrites -------------------------


def test_json_documents_come_back_as_written(store: PostgresStore) -> None:
    parameters = {"zeta": 1e20, "a": [1.5, -0.0, 10**30], "mid": {"b": 1, "a": 2}, "nul": "x\x00y"}
    run = make_run(parameters=parameters)
    store.create_flow_run(run)
    got = store.get_flow_run(run.id)
    assert got is not None and got.parameters == parameters
    assert list(got.parameters) == ["zeta", "a", "mid", "nul"]  # the user's order
    assert list(got.parameters["mid"]) == ["b", "a"]
    assert isinstance(got.parameters["zeta"], float)  # not turned into an int
    store.save_run_input(run.id, "k", '{"z": 1, "a": 2.50}')
    assert store.get_run_input(run.id, "k") == (True, '{"z": 1, "a": 2.50}')


def test_nul_characters_and_non_finite_numbers_do_not_fail_a_run(store: PostgresStore) -> None:
    run = make_run(parameters={"x": math.nan, "y": math.inf})
    store.create_flow_run(run)
    got = store.get_flow_run(run.id)
    assert got is not None and got.parameters == {"x": "NaN", "y": "Infinity"}

    running, owner = started_run(store)
    error = ErrorInfo("ValueError", "bad byte \x00 here", "Traceback\x00")
    task = make_task(running, state=StateType.FAILED, error=error, inputs={"b": "'\x00'"})
    log = LogRecord(flow_run_id=running.id, timestamp=NOW, level=20, message="a\x00b")
    store.record_task_run(task, owner.token, logs=[log])
    recorded = store.get_task_run(task.id)
    assert recorded is not None and recorded.error is not None
    assert recorded.error.message == "bad byte \ufffd here"
    assert recorded.inputs == {"b": "'\x00'"}  # json (not jsonb) keeps it
    assert [line.message for line in store.read_logs(running.id)] == ["a\ufffdb"]
    store.finish_flow_run(running.id, owner.token, state=StateType.FAILED, now=NOW, message="\x00")
    finished = store.get_flow_run(running.id)
    assert finished is not None and finished.state_message == "\ufffd"


# --- fencing across connections --------------------------------------------------


def test_fence_holds_against_a_takeover_in_flight(store: PostgresStore, url: str) -> None:
    # Another process starts taking the run over (not committed yet): the old
    # owner's write waits for it, then finds the run lost, instead of landing
    # on a run that already belongs to someone else.
    run, owner = started_run(store)
    outcome: list[BaseException | None] = []
    with psycopg.connect(url) as takeover:
        takeover.execute("UPDATE flow_runs SET owner_token = 'new-owner' WHERE id = %s", (run.id,))

        def write() -> None:
            try:
                store.record_task_run(make_task(run), owner.token)
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        blocked = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        wait_until(lambda: sql(url, blocked)[0][0] >= 1, what="the write to wait on a lock")
        assert outcome == []  # waiting on the takeover's row lock
        takeover.commit()
        writer.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], RunOwnershipLost)
    assert store.find_task_run(run.id, "t[0]") is None


# --- lifecycle and processes -----------------------------------------------------


def test_closed_store_raises_store_error(url: str) -> None:
    store = PostgresStore(url)
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        store.get_flow_run("x")


def test_connections_closed_by_the_server_are_replaced(store: PostgresStore, url: str) -> None:
    # What a server restart does to a pool: every idle connection is ended.
    # Each is found dead before use (its socket is readable) and replaced, so
    # no call fails for it.
    run = make_run()
    store.create_flow_run(run)
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    assert sql(url, f"SELECT count(*) {others}")[0][0] >= 1
    sql(url, f"SELECT pg_terminate_backend(pid) {others}")
    wait_until(
        lambda: sql(url, f"SELECT count(*) {others}")[0][0] == 0,
        timeout=10,
        what="the server to end the connections",
    )
    for _ in range(store._db.pool_size + 1):
        assert store.get_flow_run(run.id) == run


def test_a_connection_that_keeps_dying_ends_in_store_unavailable(store: PostgresStore) -> None:
    # Each try kills its own connection: the store retries on fresh ones for its
    # retry window (LEGATO_PG_RETRY_SECONDS), then gives up with one clear error.
    store._db.retry_seconds = 0.5
    with pytest.raises(StoreUnavailableError, match="terminat") as caught:
        store._db.fetchone("SELECT pg_terminate_backend(pg_backend_pid())", ())
    assert "store postgresql://postgres:***@" in str(caught.value)
    assert "could not be reached for 0.5s" in str(caught.value)
    run = make_run()
    store.create_flow_run(run)  # the pool has replaced the connection
    assert store.get_flow_run(run.id) == run


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_opens_its_own_connections(store: PostgresStore) -> None:
    parent_run = make_run()
    store.create_flow_run(parent_run)
    child_run = make_run()
    pid = os.fork()
    if pid == 0:  # the child: use the inherited store object, then leave at once
        code = 1
        try:
            store.create_flow_run(child_run)
            code = 0 if store.get_flow_run(parent_run.id) == parent_run else 2
            store.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get_flow_run(child_run.id) == child_run
    store.create_flow_run(make_run())  # the parent's connections still work


def test_many_processes_write_at_once(url: str) -> None:
    worker = Path(__file__).with_name("_stress_worker.py")
    start_at = time.time() + 2.0  # let every interpreter start before the clock runs
    roles = ["writer", "writer", "writer", "reader"]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), url, role, str(start_at), "1.5"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for role in roles
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err, err
    summaries = [json.loads(out) for out, _ in outputs]
    written = [run_id for summary in summaries[:3] for run_id in summary["runs"]]
    assert all(summary["runs"] for summary in summaries[:3])  # every writer got through
    assert summaries[3]["reads"] > 0

    store = PostgresStore(url)
    try:
        assert len(store.list_flow_runs(limit=len(written) + 10)) == len(written)
        for run_id in written:
            run = store.get_flow_run(run_id)
            assert run is not None and run.state is StateType.COMPLETED
            assert store.count_task_runs(run_id) == {StateType.COMPLETED: 3}
            assert len(store.read_logs(run_id)) == 4
    finally:
        store.close()


def test_task_runs_counted_before_the_metrics_round_2_are_not_counted_again(
    empty_url: str,
) -> None:
    # A store at the version before migration 0024, with a run that ended (its task
    # runs counted by the old trigger) and events stored.
    version = next(m.version for m in MIGRATIONS if m.name == "metrics_round2")
    with psycopg.connect(empty_url) as conn:
        for migration in MIGRATIONS[: version - 1]:
            for statement in migration.statements:
                conn.execute(statement)  # type: ignore[arg-type]
            conn.execute(QUERIES["record_migration"], (migration.version,))
        conn.execute(
            "INSERT INTO flow_runs (id, state, flow_name, name, created, parameters)"
            " VALUES ('r', 'running', 'etl', 'n', %s, '{}')",
            (NOW,),
        )
        for task_id, call_key, state, second in (
            ("t1", "fetch[0]", "completed", 3),
            ("t2", "load[0]", "failed", 4),
        ):
            conn.execute(
                "INSERT INTO task_runs (id, flow_run_id, call_key, task_name, name, state,"
                " start_time, end_time) VALUES (%s, 'r', %s, %s, %s, %s, %s, %s)",
                (
                    task_id,
                    call_key,
                    call_key.split("[")[0],
                    call_key,
                    state,
                    NOW + timedelta(seconds=second - 1),
                    NOW + timedelta(seconds=second),
                ),
            )
        conn.execute(
            "UPDATE flow_runs SET state = 'failed', end_time = %s WHERE id = 'r'",
            (NOW + timedelta(seconds=5),),
        )
        conn.commit()
    events = dict(sql(empty_url, "SELECT event, count(*) FROM events GROUP BY event"))
    assert events  # the run's state changes wrote events

    store = PostgresStore(empty_url)
    try:
        assert store.migrated == list(range(version, LATEST_VERSION + 1))
        assert store.metric_event_counts() == events
        counted = {(r.task, r.state): r.n for r in store.metric_task_counts()}
        assert counted == {("fetch", "completed"): 1, ("load", "failed"): 1}
        resumed_at = NOW + timedelta(seconds=10)
        assert store.transition_flow_run(
            "r", to_state=StateType.PENDING, from_states=[StateType.FAILED], now=resumed_at
        )
        owner = RunOwner(token="tok", host="h", pid=1, pid_started=1.0)
        assert store.start_flow_run("r", owner, from_states=[StateType.PENDING], now=resumed_at)
        store.finish_flow_run("r", "tok", state=StateType.COMPLETED, now=resumed_at)
        # Nothing new reached a final state: the old counts stay as they were.
        counted = {(r.task, r.state): r.n for r in store.metric_task_counts()}
        assert counted == {("fetch", "completed"): 1, ("load", "failed"): 1}
    finally:
        store.close()


def test_runs_counted_by_the_old_metric_trigger_are_not_folded_again(empty_url: str) -> None:
    # A store at the version before migration 0025, whose run's state changes were
    # counted by the trigger it drops (and wrote their events too).
    version = next(m.version for m in MIGRATIONS if m.name == "metrics_fold")
    with psycopg.connect(empty_url) as conn:
        for migration in MIGRATIONS[: version - 1]:
            for statement in migration.statements:
                conn.execute(statement)  # type: ignore[arg-type]
            conn.execute(QUERIES["record_migration"], (migration.version,))
        conn.execute(
            "INSERT INTO flow_runs (id, state, flow_name, name, created, parameters)"
            " VALUES ('r', 'pending', 'etl', 'n', %s, '{}')",
            (NOW,),
        )
        conn.execute(
            "UPDATE flow_runs SET state = 'running', start_time = %s WHERE id = 'r'",
            (NOW + timedelta(seconds=2),),
        )
        conn.execute(
            "UPDATE flow_runs SET state = 'failed', end_time = %s WHERE id = 'r'",
            (NOW + timedelta(seconds=5),),
        )
        conn.commit()

    store = PostgresStore(empty_url)
    try:
        assert store.migrated == list(range(version, LATEST_VERSION + 1))
        counted = {r.state: (r.entered, r.current) for r in store.metric_run_counts()}
        assert counted == {"pending": (1, 0), "running": (1, 0), "failed": (1, 1)}
        durations = [(h.le, h.n) for h in store.metric_histograms() if h.metric == "duration"]
        assert durations == [(5.0, 1)]
        # A change after the migration is folded from its event, once.
        assert store.transition_flow_run(
            "r", to_state=StateType.PENDING, from_states=[StateType.FAILED], now=NOW
        )
        counted = {r.state: (r.entered, r.current) for r in store.metric_run_counts()}
        assert counted == {"pending": (2, 1), "running": (1, 0), "failed": (1, 0)}
    finally:
        store.close()
