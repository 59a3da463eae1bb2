"""What only the SQLite backend promises: its file, schema, migrations, locking, processes."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from legato.errors import SchemaVersionError, StoreError
from legato.records import FlowRun, RunOwner, TaskRun
from legato.states import StateType
from legato.store import open_store
from legato.store.sqlite import SQLiteStore, connection, migrate
from legato.store.sqlite.sql import LATEST_VERSION, MIGRATIONS, QUERIES, Migration

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_run(**changes: Any) -> FlowRun:
    fields: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "flow_name": "f",
        "name": "n",
        "state": StateType.PENDING,
    }
    fields.update(changes)
    return FlowRun(**fields)


def _normalize_sql(sql: str | None) -> str | None:
    if sql is None:
        return None
    sql = re.sub(r"--[^\n]*", " ", sql)
    return re.sub(r"\s+", " ", sql).strip()


def describe_schema(path: Path) -> dict[str, Any]:
    """The schema as SQLite sees it: columns, keys and indexes, not statement text.

    Tables are compared column by column (ALTER TABLE rewrites a table's
    stored CREATE text, so the text itself would differ); indexes, views and
    triggers by their normalized SQL.
    """
    conn = sqlite3.connect(path)
    try:
        described: dict[str, Any] = {}
        objects = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        for kind, name, table, sql in objects:
            entry: dict[str, Any] = {"type": kind, "table": table}
            if kind == "table":
                entry["columns"] = conn.execute(f"PRAGMA table_xinfo('{name}')").fetchall()
                entry["list"] = conn.execute(f"PRAGMA table_list('{name}')").fetchall()
                entry["foreign_keys"] = conn.execute(
                    f"PRAGMA foreign_key_list('{name}')"
                ).fetchall()
            elif kind == "index":
                entry["columns"] = conn.execute(f"PRAGMA index_xinfo('{name}')").fetchall()
                entry["sql"] = _normalize_sql(sql)
            else:
                entry["sql"] = _normalize_sql(sql)
            described[name] = entry
        return described
    finally:
        conn.close()


def apply_migrations_by_hand(path: Path, migrations: list[Migration]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for migration in migrations:
            conn.execute("BEGIN")
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(QUERIES["record_migration"], (migration.version, time.time()))
            conn.execute("COMMIT")
    finally:
        conn.close()


# --- schema and migrations -------------------------------------------------------


def test_fresh_schema_equals_all_migrations_in_order(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    SQLiteStore(fresh).close()
    migrated = tmp_path / "migrated.db"
    apply_migrations_by_hand(migrated, MIGRATIONS)
    store = SQLiteStore(migrated)  # must find nothing left to do
    assert store.schema_version() == LATEST_VERSION
    store.close()
    assert describe_schema(fresh) == describe_schema(migrated)
    assert "flow_runs" in describe_schema(fresh)


def test_pending_migrations_are_applied_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    run = make_run()
    store.create_flow_run(run)
    store.close()

    extra = Migration(LATEST_VERSION + 1, "extra", ["CREATE TABLE extra (x INTEGER)"])
    monkeypatch.setattr(migrate, "MIGRATIONS", [*MIGRATIONS, extra])
    monkeypatch.setattr(migrate, "LATEST_VERSION", extra.version)
    store = SQLiteStore(path)
    try:
        assert store.schema_version() == extra.version
        assert store.get_flow_run(run.id) == run
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM extra").fetchone() == (0,)
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
        assert versions == [*range(1, LATEST_VERSION + 1), extra.version][-len(versions) :]
        assert versions[-1] == extra.version
    finally:
        conn.close()


def test_tags_of_runs_stored_before_the_tag_table_are_back_filled(tmp_path: Path) -> None:
    # A store at the version before flow_run_tags, with runs written as that
    # version wrote them (their tags only in the JSON column).
    tags_version = next(m.version for m in MIGRATIONS if m.name == "flow_run_tags")
    path = tmp_path / "old.db"
    apply_migrations_by_hand(path, MIGRATIONS[: tags_version - 1])
    stored = [
        ("a", 1.0, '["x","y"]'),
        ("b", 2.0, '["x","x"]'),  # a tag twice: one row
        ("c", 3.0, None),
        ("d", 3.0, "[]"),
        ("e", 4.0, '["x"]'),
        ("f", 4.0, '["x","é✓"]'),  # same time as e, stored after it: listed first
    ]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executemany(
            "INSERT INTO flow_runs (id, state, flow_name, name, created, parameters, tags)"
            " VALUES (?, 'completed', 'f', 'n', ?, '{}', ?)",
            stored,
        )
    finally:
        conn.close()

    store = SQLiteStore(path)
    try:
        assert store.migrated == list(range(tags_version, LATEST_VERSION + 1))
        assert [run.id for run in store.list_flow_runs()] == ["f", "e", "d", "c", "b", "a"]
        assert [run.id for run in store.list_flow_runs(tag="x")] == ["f", "e", "b", "a"]
        assert [run.id for run in store.list_flow_runs(tag="y")] == ["a"]
        assert [run.id for run in store.list_flow_runs(tag="é✓")] == ["f"]
        created_4 = datetime.fromtimestamp(4.0, UTC)
        assert [run.id for run in store.list_flow_runs(tag="x", created_before=created_4)] == [
            "b",
            "a",
        ]
        # A run stored now at the same time as e and f comes before both, as it
        # does without a tag.
        store.create_flow_run(make_run(id="g", tags=("x",), created=created_4))
        assert [run.id for run in store.list_flow_runs(tag="x", limit=3)] == ["g", "f", "e"]
        assert [run.id for run in store.list_flow_runs(limit=3)] == ["g", "f", "e"]
        tag_rows = store._db.fetchall("SELECT run_id, tag FROM flow_run_tags ORDER BY seq", ())
        assert [tuple(row) for row in tag_rows] == [
            ("a", "x"),
            ("a", "y"),
            ("b", "x"),
            ("e", "x"),
            ("f", "x"),
            ("f", "é✓"),
            ("g", "x"),
        ]
    finally:
        store.close()


def test_database_from_newer_legato_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "legato.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(QUERIES["record_migration"], (LATEST_VERSION + 1, time.time()))
    conn.close()
    with pytest.raises(SchemaVersionError, match="upgrade legato"):
        SQLiteStore(path)


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    with pytest.raises(StoreError, match="not a legato store"):
        SQLiteStore(path)


def test_garbage_file_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=re.escape(str(path))):
        SQLiteStore(path)


# --- the file --------------------------------------------------------------------


def test_creates_folder_and_reports_url(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "legato.db"
    store = SQLiteStore(path)
    try:
        assert path.exists()
        assert store.backend == "sqlite"
        assert store.display_url == f"sqlite:///{path}"
        run = make_run()
        store.create_flow_run(run)
    finally:
        store.close()
    again = open_store(store.display_url)
    try:
        assert again.get_flow_run(run.id) == run
    finally:
        again.close()


def test_wal_mode_and_synchronous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "legato.db"
    store = SQLiteStore(path)
    try:
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        conn.close()
        assert store._db.fetchone("PRAGMA synchronous", ()) == (1,)  # NORMAL
    finally:
        store.close()
    monkeypatch.setenv("LEGATO_SQLITE_SYNCHRONOUS", "full")
    store = SQLiteStore(path)
    try:
        assert store._db.fetchone("PRAGMA synchronous", ()) == (2,)  # FULL
    finally:
        store.close()
    monkeypatch.setenv("LEGATO_SQLITE_SYNCHRONOUS", "sometimes")
    with pytest.raises(StoreError, match="LEGATO_SQLITE_SYNCHRONOUS"):
        SQLiteStore(path)


def test_reopening_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "legato.db"
    store = SQLiteStore(path)
    run = make_run()
    store.create_flow_run(run, parameters_blob=b"blob")
    owner = RunOwner(token="t", host="h", pid=1)
    store.start_flow_run(run.id, owner, from_states=[StateType.PENDING], now=NOW)
    task = TaskRun(
        id=uuid.uuid4().hex,
        flow_run_id=run.id,
        call_key="a[0]",
        task_name="a",
        name="a-0",
        state=StateType.COMPLETED,
    )
    store.record_task_run(task, "t")
    before = store.get_flow_run(run.id)
    store.close()
    store = SQLiteStore(path)
    try:
        assert store.get_flow_run(run.id) == before
        assert store.get_task_run(task.id) == task
        assert store.get_parameters_blob(run.id) == b"blob"
    finally:
        store.close()


def test_closed_store_raises_store_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "legato.db")
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        store.get_flow_run("x")


def test_queries_on_large_tables_use_indexes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "legato.db")
    try:
        names = [
            "match_run_ids",
            "get_flow_run",
            "find_child_run",
            "get_task_run",
            "find_task_run",
            "list_task_runs",
            "get_cached_result",
            "read_logs",
            "read_task_logs",
        ]
        plans = {}
        for name in names:
            sql = QUERIES[name]
            params = (None,) * sql.count("?")
            plans[name] = store._db.fetchall("EXPLAIN QUERY PLAN " + sql, params)
        for name in ("flow_run_stats", "flow_duration_stats"):
            sql = QUERIES[name]
            plans[name] = store._db.fetchall("EXPLAIN QUERY PLAN " + sql, (None,) * sql.count("?"))
        for where in (
            "",
            "WHERE " + QUERIES["where_flow_name"],
            "WHERE " + QUERIES["where_parent"],
            "WHERE " + QUERIES["where_created_before"],
            f"WHERE {QUERIES['where_state']} AND {QUERIES['where_created_after']}"
            f" AND {QUERIES['where_created_before']}",
            # A tag among the children of one run: the parent index drives.
            f"WHERE {QUERIES['where_parent']} AND {QUERIES['where_child_tag']}"
            f" AND {QUERIES['where_created_before']}",
        ):
            sql = QUERIES["list_flow_runs"].replace("{where}", where)
            plans[f"list_flow_runs {where}"] = store._db.fetchall(
                "EXPLAIN QUERY PLAN " + sql, (None,) * sql.count("?")
            )
        # A tag otherwise: the runs that carry it, from the flow_run_tags index.
        for where, ranges in (
            ("", ""),
            ("", f"AND {QUERIES['where_created_before']}"),
            (
                f"WHERE {QUERIES['where_state']}",
                f"AND {QUERIES['where_created_after']} AND {QUERIES['where_created_before']}",
            ),
            (f"WHERE {QUERIES['where_flow_name']} AND {QUERIES['where_state']}", ""),
            (f"WHERE {QUERIES['where_deployment']}", f"AND {QUERIES['where_created_after']}"),
        ):
            sql = QUERIES["list_tagged_flow_runs"].replace("{tag_range}", ranges)
            sql = sql.replace("{where}", where)
            plans[f"list_tagged_flow_runs {ranges} {where}"] = store._db.fetchall(
                "EXPLAIN QUERY PLAN " + sql, (None,) * sql.count("?")
            )
    finally:
        store.close()
    for name, plan in plans.items():
        details = [row[-1] for row in plan]
        full_scans = [
            d for d in details if re.match(r"SCAN (flow_runs|flow_run_tags|task_runs|logs)$", d)
        ]
        assert not full_scans, f"{name} scans a whole table: {details}"
        if name.startswith(("list_flow_runs", "list_tagged")) and "parent" not in name:
            assert not any("TEMP B-TREE" in d for d in details), f"{name} sorts: {details}"
        if name.startswith("list_tagged_flow_runs"):
            # Walks the tag's index entries newest first, and finds each run by its id.
            assert details[0].startswith("SEARCH flow_run_tags USING INDEX flow_run_tags_tag"), (
                f"{name}: {details}"
            )
            assert details[1:] == [
                "SEARCH flow_runs USING INDEX sqlite_autoindex_flow_runs_1 (id=?)"
            ], f"{name}: {details}"
    [child_tag] = [[row[-1] for row in plan] for name, plan in plans.items() if "t.tag" in name]
    assert any("flow_runs_parent" in d for d in child_tag), child_tag
    assert any(
        d.endswith("INDEX sqlite_autoindex_flow_run_tags_1 (run_id=? AND tag=?)") for d in child_tag
    ), child_tag


# --- locking ---------------------------------------------------------------------


def test_lock_held_too_long_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "legato.db"
    store = SQLiteStore(path, lock_timeout=0.3)
    run = make_run()
    store.create_flow_run(run)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        assert store.get_flow_run(run.id) == run  # WAL: reads go on
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            store.create_flow_run(make_run())
        assert time.monotonic() - started < 5
        message = str(caught.value)
        assert str(path) in message and "write lock" in message
        assert "database is locked" not in message
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        store.close()


def test_waits_for_a_lock_released_later(tmp_path: Path) -> None:
    path = tmp_path / "legato.db"
    store = SQLiteStore(path, lock_timeout=10)
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.4, lambda: blocker.execute("COMMIT"))
    release.start()
    try:
        run = make_run()
        store.create_flow_run(run)
        assert store.get_flow_run(run.id) == run
    finally:
        release.join()
        blocker.close()
        store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "legato.db")
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
    try:
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.get_flow_run(child_run.id) == child_run
        store.create_flow_run(make_run())  # the parent's connection still works
    finally:
        store.close()


def test_unannounced_fork_never_reuses_the_connection(tmp_path: Path) -> None:
    # A fork that skipped os.register_at_fork (e.g. from C code) shows up as a
    # changed pid: the inherited connection is parked, never used or closed.
    store = SQLiteStore(tmp_path / "legato.db")
    db = store._db
    inherited = db._conn
    db._pid = -1
    try:
        run = make_run()
        store.create_flow_run(run)
        assert db._conn is not None and db._conn is not inherited
        assert inherited in connection._inherited
        assert store.get_flow_run(run.id) == run
    finally:
        store.close()
        connection._inherited.remove(inherited)  # type: ignore[arg-type]
        if inherited is not None:
            inherited.close()


def test_many_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    SQLiteStore(path).close()  # create the schema once, as a first `legato` call would
    worker = Path(__file__).with_name("_stress_worker.py")
    start_at = time.time() + 1.5  # let every interpreter start before the clock runs
    roles = ["writer", "writer", "writer", "reader"]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), str(path), role, str(start_at), "2.0"],
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
        assert "locked" not in err and "Traceback" not in err, err
    summaries = [json.loads(out) for out, _ in outputs]
    written = [run_id for summary in summaries[:3] for run_id in summary["runs"]]
    assert all(summary["runs"] for summary in summaries[:3])  # every writer got through
    assert summaries[3]["reads"] > 0

    store = SQLiteStore(path)
    try:
        assert len(store.list_flow_runs(limit=len(written) + 10)) == len(written)
        for run_id in written:
            run = store.get_flow_run(run_id)
            assert run is not None and run.state is StateType.COMPLETED
            assert store.count_task_runs(run_id) == {StateType.COMPLETED: 3}
            assert len(store.read_logs(run_id)) == 4
    finally:
        store.close()


# --- the task run journal ------------------------------------------------------


def _journal_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM task_run_journal").fetchone()[0])
    finally:
        conn.close()


def _started_run(store: SQLiteStore) -> tuple[FlowRun, RunOwner]:
    run = make_run()
    store.create_flow_run(run)
    owner = RunOwner(token=uuid.uuid4().hex, host="h", pid=os.getpid())
    started = store.start_flow_run(run.id, owner, from_states=[StateType.PENDING], now=NOW)
    assert started is not None
    return started, owner


def _task(run: FlowRun, i: int, state: StateType = StateType.COMPLETED) -> TaskRun:
    return TaskRun(
        id=uuid.uuid4().hex,
        flow_run_id=run.id,
        call_key=f"t[{i}]",
        task_name="t",
        name=f"t[{i}]",
        state=state,
        attempts=1,
        start_time=datetime.fromtimestamp(1_700_000_000 + i, UTC),
    )


def test_journal_is_folded_in_batches_and_reads_see_everything(tmp_path: Path) -> None:
    from legato.store.sqlite.store import _FOLD_EVERY

    path = tmp_path / "j.db"
    store = SQLiteStore(path)
    run, owner = _started_run(store)
    count = _FOLD_EVERY * 2 + 7
    for i in range(count):
        store.record_task_run(_task(run, i), owner.token)
    # Appends fold every _FOLD_EVERY records, so the journal stays small...
    assert _journal_rows(path) < _FOLD_EVERY
    # ...and a read folds the rest first: every record, in recording order.
    keys = [t.call_key for t in store.list_task_runs(run.id)]
    assert keys == [f"t[{i}]" for i in range(count)]
    assert _journal_rows(path) == 0
    store.close()


def test_a_task_record_waits_out_a_lock_and_reports_one_held_too_long(
    tmp_path: Path,
) -> None:
    # The plain task record is one statement on the open connection (no BEGIN):
    # when another process holds the write lock it still waits, then commits,
    # and past the lock timeout it fails with the store's own message.
    path = tmp_path / "j.db"
    store = SQLiteStore(path, lock_timeout=10)
    run, owner = _started_run(store)
    store.record_task_run(_task(run, 0), owner.token)  # the connection is open
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.4, lambda: blocker.execute("COMMIT"))
    release.start()
    try:
        store.record_task_run(_task(run, 1), owner.token)
    finally:
        release.join()
    assert [t.call_key for t in store.list_task_runs(run.id)] == ["t[0]", "t[1]"]
    store.close()
    store = SQLiteStore(path, lock_timeout=0.3)
    store.record_task_run(_task(run, 2), owner.token)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="write lock"):
            store.record_task_run(_task(run, 3), owner.token)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert [t.call_key for t in store.list_task_runs(run.id)] == ["t[0]", "t[1]", "t[2]"]
    store.close()


def test_another_connection_reads_records_still_in_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    writer = SQLiteStore(path)
    reader = SQLiteStore(path)  # as another process would
    run, owner = _started_run(writer)
    writer.record_task_run(_task(run, 0, StateType.RUNNING), owner.token)
    writer.record_task_run(_task(run, 0, StateType.COMPLETED), owner.token)
    writer.record_task_run(_task(run, 1), owner.token)
    assert _journal_rows(path) == 3
    found = reader.find_task_run(run.id, "t[0]")
    assert found is not None and found.state is StateType.COMPLETED
    assert reader.count_task_runs(run.id) == {StateType.COMPLETED: 2}
    assert _journal_rows(path) == 0
    writer.close()
    reader.close()


def test_finishing_a_run_folds_its_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    store = SQLiteStore(path)
    run, owner = _started_run(store)
    for i in range(5):
        store.record_task_run(_task(run, i), owner.token)
    store.finish_flow_run(run.id, owner.token, state=StateType.COMPLETED, now=NOW)
    assert _journal_rows(path) == 0
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM task_runs").fetchone()[0] == 5
    finally:
        conn.close()
    store.close()


def test_task_runs_counted_before_the_metrics_round_2_are_not_counted_again(
    tmp_path: Path,
) -> None:
    # A store at the version before migration 0025, with a run that ended (its task
    # runs counted by the old trigger) and events stored.
    version = next(m.version for m in MIGRATIONS if m.name == "metrics_round2")
    path = tmp_path / "old.db"
    apply_migrations_by_hand(path, MIGRATIONS[: version - 1])
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "INSERT INTO flow_runs (id, state, flow_name, name, created, parameters)"
            " VALUES ('r', 'running', 'etl', 'n', 1.0, '{}')"
        )
        conn.executemany(
            "INSERT INTO task_runs (id, flow_run_id, call_key, task_name, name, state,"
            " start_time, end_time) VALUES (?, 'r', ?, ?, ?, ?, ?, ?)",
            [
                ("t1", "fetch[0]", "fetch", "fetch-0", "completed", 2.0, 3.0),
                ("t2", "load[0]", "load", "load-0", "failed", 3.0, 4.0),
            ],
        )
        conn.execute("UPDATE flow_runs SET state = 'failed', end_time = 5.0 WHERE id = 'r'")
        events = dict(conn.execute("SELECT event, count(*) FROM events GROUP BY event").fetchall())
    finally:
        conn.close()
    assert events  # the run's state changes wrote events

    store = SQLiteStore(path)
    try:
        assert store.migrated == list(range(version, LATEST_VERSION + 1))
        assert store.metric_event_counts() == events
        counted = {(r.task, r.state): r.n for r in store.metric_task_counts()}
        assert counted == {("fetch", "completed"): 1, ("load", "failed"): 1}
        resumed_at = datetime.fromtimestamp(10.0, UTC)
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


def test_runs_counted_by_the_old_metric_triggers_are_not_folded_again(tmp_path: Path) -> None:
    # A store at the version before migration 0026, whose run's state changes were
    # counted by the triggers it drops (and wrote their events too).
    version = next(m.version for m in MIGRATIONS if m.name == "metrics_fold")
    path = tmp_path / "old.db"
    apply_migrations_by_hand(path, MIGRATIONS[: version - 1])
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "INSERT INTO flow_runs (id, state, flow_name, name, created, parameters)"
            " VALUES ('r', 'pending', 'etl', 'n', 1.0, '{}')"
        )
        conn.execute("UPDATE flow_runs SET state = 'running', start_time = 2.0 WHERE id = 'r'")
        conn.execute("UPDATE flow_runs SET state = 'failed', end_time = 5.0 WHERE id = 'r'")
    finally:
        conn.close()

    store = SQLiteStore(path)
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
