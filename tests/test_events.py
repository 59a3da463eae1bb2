"""legato.emit_event: Prefect's call, checked input, the run's related resources, and the
state-change events of real flow runs (on both backends)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import legato
from legato import flow, task
from legato._event_records import Event
from legato.errors import InvalidEventError
from legato.events import emit_event
from legato.store.base import Store

pytestmark = pytest.mark.usefixtures("backend")


def stored(store: Store) -> list[Event]:
    return store.read_events(None, limit=10_000).events


def test_emit_event_stores_prefect_shaped_events(default_store: Store) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    event_id = emit_event(
        "warehouse.table.refreshed",
        resource={"prefect.resource.id": "warehouse.table.orders", "env": "prod"},
        related=[{"prefect.resource.id": "dbt.model.orders", "prefect.resource.role": "model"}],
        payload={"rows": 1200},
        occurred=when,
    )
    got = default_store.get_event(event_id)
    assert got is not None
    assert got.event == "warehouse.table.refreshed"
    assert dict(got.resource) == {"legato.resource.id": "warehouse.table.orders", "env": "prod"}
    assert got.related_ids("model") == ["dbt.model.orders"]
    assert dict(got.payload) == {"rows": 1200}
    assert got.occurred == when
    assert legato.emit_event is emit_event


def test_an_event_id_emitted_twice_is_stored_once(default_store: Store) -> None:
    for rows in (1, 2):
        emit_event(
            "file.copied", resource={"legato.resource.id": "f"}, payload={"r": rows}, id="once"
        )
    found = [e for e in stored(default_store) if e.id == "once"]
    assert len(found) == 1 and found[0].payload == {"r": 1}


def test_events_emitted_in_a_task_name_the_run_the_flow_and_the_task_run(
    default_store: Store,
) -> None:
    @task
    def publish() -> str:
        return emit_event("report.published", resource={"legato.resource.id": "report.q3"})

    @flow
    def reporting() -> str:
        return publish()

    event_id = reporting()
    got = default_store.get_event(event_id)
    assert got is not None
    [run] = default_store.list_flow_runs()
    [task_run] = default_store.list_task_runs(run.id)
    assert got.related_ids("flow-run") == [f"legato.flow-run.{run.id}"]
    assert got.related_ids("flow") == ["legato.flow.reporting"]
    assert got.related_ids("task-run") == [f"legato.task-run.{task_run.id}"]


def test_a_flow_run_writes_its_state_events_and_a_failed_task_its_own(
    default_store: Store,
) -> None:
    @task
    def explode() -> None:
        raise RuntimeError("disk full")

    @flow
    def nightly() -> None:
        explode()

    with pytest.raises(RuntimeError):
        nightly()
    [run] = default_store.list_flow_runs()
    names = [e.event for e in stored(default_store)]
    assert names[0] in ("legato.flow-run.Pending", "legato.flow-run.Running")
    assert names[-1] == "legato.flow-run.Failed"
    assert "legato.task-run.Failed" in names
    assert names.index("legato.task-run.Failed") < names.index("legato.flow-run.Failed")
    failed = default_store.list_events(names=["legato.flow-run.Failed"])[0]
    assert failed.resource_id == f"legato.flow-run.{run.id}"
    assert failed.payload["error_type"] == "RuntimeError"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event": "", "resource": {"legato.resource.id": "x"}}, "non-empty"),
        ({"event": "has space", "resource": {"legato.resource.id": "x"}}, "without spaces"),
        ({"event": "ok", "resource": {"name": "x"}}, "legato.resource.id"),
        ({"event": "ok", "resource": "x"}, "dict of labels"),
        ({"event": "ok", "resource": {"legato.resource.id": 5}}, "str to a str"),
        (
            {"event": "ok", "resource": {"legato.resource.id": "x"}, "related": [{"a": "b"}]},
            "related resource #1",
        ),
        (
            {
                "event": "ok",
                "resource": {"legato.resource.id": "x"},
                "related": [{"legato.resource.id": "y"}],
            },
            "legato.resource.role",
        ),
        (
            {"event": "ok", "resource": {"legato.resource.id": "x"}, "payload": {"t": object()}},
            "not JSON",
        ),
        (
            {"event": "ok", "resource": {"legato.resource.id": "x"}, "payload": [1]},
            "must be a dict",
        ),
        (
            {
                "event": "ok",
                "resource": {"legato.resource.id": "x"},
                "payload": {"big": "x" * 300_000},
            },
            "bytes of JSON",
        ),
        ({"event": "ok", "resource": {"legato.resource.id": "x"}, "id": ""}, "event id"),
        ({"event": "ok", "resource": {"legato.resource.id": "x\x00y"}}, "NUL character"),
        ({"event": "ok", "resource": {"legato.resource.id": "x", "k": "\ud800"}}, "surrogate"),
        ({"event": "bad\ud800", "resource": {"legato.resource.id": "x"}}, "printable"),
    ],
)
def test_bad_events_are_refused_with_what_to_fix(
    default_store: Store, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidEventError, match=message):
        emit_event(**kwargs)  # type: ignore[arg-type]
    assert stored(default_store) == []


def test_prefect_events_maps_to_legato_events(tmp_path: Path) -> None:
    script = tmp_path / "emit.py"
    script.write_text(
        "from prefect.events import emit_event\n"
        "print(emit_event('x.y', resource={'prefect.resource.id': 'r'}) is not None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "legato.prefect", str(script)],
        capture_output=True,
        text=True,
        env={"LEGATO_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_import_legato_loads_no_events_automations_or_notifications() -> None:
    """Events, automations, alerts, notifications, webhooks and deadlines load when
    used: `import legato` (the cost of every flow process) stays light."""
    code = (
        "import sys, legato\n"
        "heavy = ('legato._event_records', 'legato._automation_records', "
        "'legato._alert_records', 'legato._notification_records', 'legato._webhook_records', "
        "'legato.deadlines', 'legato.automations', 'legato.notify', 'legato.alerts', "
        "'legato.events', 'jinja2', 'httpx')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
