"""Alert rules on both backends: the default message of a failing flow, grouping a storm,
rate limits that hold back and summarise, PagerDuty resolves, idempotent actions, the
call-webhook action, and the CLI and project file."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from _receiver import Receiver, running_receiver
from legato import flow, task
from legato._event_records import Event
from legato.alerts import service
from legato.alerts.sending import send_notification
from legato.automations import service as automations
from legato.automations.actions import ActionContext
from legato.automations.evaluator import Evaluator
from legato.automations.model import parse_action, parse_automation
from legato.client import Client
from legato.errors import InvalidAutomationError
from legato.notify.channels import check_channel
from legato.notify.sender import Sender
from legato.records import utcnow
from legato.store.base import Store

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def add_channel(store: Store, name: str, type: str, **config: object) -> None:
    checked = check_channel(name, type, config)
    assert store.put_notification_channel(name, type, checked, overwrite=False, now=utcnow())


def apply_alerts(store: Store, text: str) -> None:
    service.apply(store, service.load_yaml(text))


def failed(flow_name: str, run: str, *, state: str = "Failed", **payload: object) -> Event:
    return Event(
        id=uuid.uuid4().hex,
        event=f"legato.flow-run.{state}",
        occurred=utcnow(),
        resource={
            "legato.resource.id": f"legato.flow-run.{run}",
            "legato.resource.name": f"run-{run}",
            "legato.state-name": state,
        },
        related=(
            {
                "legato.resource.id": f"legato.flow.{flow_name}",
                "legato.resource.role": "flow",
                "legato.resource.name": flow_name,
            },
        ),
        payload=dict(payload),
    )


class Clock:
    """The store's clock, moved by the test instead of sleeping."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = utcnow()
        monkeypatch.setattr(store, "clock", lambda: self.now)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def evaluate_and_send(store: Store) -> None:
    Evaluator(Client(store)).run_until_caught_up()
    Sender(store).send_due()


@flow
def boom() -> None:
    raise ValueError("disk full\nsecond line of the error")


@flow
def fine() -> None:
    raise ValueError("another flow's failure")


def test_a_failing_flow_sends_one_message_with_the_default_template(
    default_store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = default_store
    monkeypatch.setenv("LEGATO_UI_URL", "http://legato.test")
    add_channel(store, "ops", "webhook", url=f"{receiver.url}/ops")
    apply_alerts(
        store,
        "- {name: boom-fails, on: [flow-run.failed, flow-run.crashed], match: {flow: boom},"
        "   channels: [ops]}",
    )
    with pytest.raises(ValueError, match="disk full"):
        boom()
    with pytest.raises(ValueError):
        fine()  # another flow: not matched
    evaluate_and_send(store)
    evaluate_and_send(store)  # evaluating and sending again changes nothing

    [request] = receiver.at("/ops")
    sent = request.json()
    [run] = [r for r in store.list_flow_runs(limit=10) if r.flow_name == "boom"]
    assert sent["subject"] == f"boom run {run.name} is Failed"
    body = sent["body"]
    assert "Flow: boom" in body and "State: Failed" in body
    assert f"Run: http://legato.test/runs/{run.id}" in body
    assert "ValueError: disk full" in body and "second line of the error" in body
    assert sent["payload"]["dedup_key"] == "legato:alert:boom-fails:flow=boom"


@task
def flaky_step() -> None:
    raise RuntimeError("step broke")


@flow
def tasky() -> str:
    try:
        flaky_step()
    except RuntimeError:
        return "recovered"
    return "unreachable"


def test_a_failed_task_alerts_by_its_flow_run_s_flow(
    default_store: Store, receiver: Receiver
) -> None:
    store = default_store
    add_channel(store, "ops", "webhook", url=f"{receiver.url}/ops")
    apply_alerts(
        store,
        "- {name: tasks, on: [task-run.failed], match: {flow: tasky}, channels: [ops]}\n"
        "- {name: other, on: [task-run.failed], match: {flow: boom}, channels: [ops]}",
    )
    assert tasky() == "recovered"
    evaluate_and_send(store)
    [request] = receiver.at("/ops")
    sent = request.json()
    assert sent["payload"]["group"] == "flow=tasky"
    assert "Flow: tasky" in sent["body"] and "RuntimeError: step broke" in sent["body"]


def test_a_thousand_failures_make_two_grouped_messages_with_the_count(
    default_store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = default_store
    clock = Clock(store, monkeypatch)
    add_channel(store, "ops", "webhook", url=f"{receiver.url}/ops")
    apply_alerts(
        store,
        "- {name: storm, on: [flow-run.failed], channels: [ops], group_window: 5m}",
    )
    store.emit_events([failed("etl", f"r{n:04d}") for n in range(1000)])
    store.emit_events([failed("other", "x1")])  # another group: its own message
    evaluate_and_send(store)
    assert sorted(r.json()["payload"]["group"] for r in receiver.at("/ops")) == [
        "flow=etl",
        "flow=other",
    ]
    [state] = [s for s in store.list_alert_states("alert:storm") if s.key == "0/flow=etl"]
    assert (state.data["count"], state.data["pending"]) == (1000, 999)

    clock.advance(minutes=4)
    evaluate_and_send(store)
    assert len(receiver.at("/ops")) == 2  # the window is still open
    clock.advance(minutes=2)
    evaluate_and_send(store)
    evaluate_and_send(store)
    requests = receiver.at("/ops")
    assert len(requests) == 3
    summary = requests[2].json()
    assert summary["subject"] == (
        "[storm] 999 more legato.flow-run.Failed event(s) for flow=etl within 300s"
    )
    assert summary["payload"]["count"] == 999
    assert "1000 event(s) for flow=etl" in summary["body"]
    listed = [line for line in summary["body"].splitlines() if line.startswith("- run-r")]
    assert len(listed) == 5 and summary["body"].endswith("\n…and 994 more")
    assert store.list_alert_states("alert:storm") == []  # windows closed, groups forgotten


def test_a_rate_limit_holds_messages_back_and_summarises_them(
    default_store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = default_store
    clock = Clock(store, monkeypatch)
    add_channel(store, "ops", "webhook", url=f"{receiver.url}/ops")
    apply_alerts(
        store, "- {name: limited, on: [flow-run.failed], channels: [ops], rate_limit: 2/h}"
    )
    # One batch: its firings' actions run in the order the events arrived.
    store.emit_events([failed(f"f{n}", f"r{n}") for n in range(5)])
    evaluate_and_send(store)
    assert [r.json()["subject"] for r in receiver.at("/ops")] == [
        "f0 run run-r0 is Failed",
        "f1 run run-r1 is Failed",
    ]
    clock.advance(minutes=61)  # the period lets a message out: the held ones are reported
    evaluate_and_send(store)
    held = receiver.at("/ops")[2].json()
    assert held["subject"] == "[limited] 3 message(s) were held back by rate_limit 2/h"
    assert held["body"].splitlines() == [
        "3 earlier message(s) were held back by rate_limit 2/h:",
        "- f2 run run-r2 is Failed",
        "- f3 run run-r3 is Failed",
        "- f4 run run-r4 is Failed",
    ]
    for n in (5, 6):
        store.emit_events([failed(f"f{n}", f"r{n}")])
        evaluate_and_send(store)
    assert len(receiver.at("/ops")) == 4  # f5 sent (2 in the hour), f6 held
    clock.advance(minutes=61)
    store.emit_events([failed("f7", "r7")])
    evaluate_and_send(store)
    requests = receiver.at("/ops")
    assert len(requests) == 5  # f7 carries f6: no separate summary
    last = requests[4].json()
    assert last["subject"] == "f7 run run-r7 is Failed"
    assert last["body"].startswith(
        "1 earlier message(s) were held back by rate_limit 2/h:\n- f6 run run-r6 is Failed\n\n"
    )


def test_resolve_on_sends_a_pagerduty_resolve_with_the_same_dedup_key(
    default_store: Store, receiver: Receiver
) -> None:
    store = default_store
    add_channel(store, "pd", "pagerduty", routing_key="rk", events_url=f"{receiver.url}/pd")
    apply_alerts(
        store,
        "- {name: etl-down, on: [flow-run.failed], resolve_on: [flow-run.completed],"
        "   channels: [pd], group_by: [flow]}",
    )
    store.emit_events([failed("etl", "r1")])
    evaluate_and_send(store)
    store.emit_events(
        [failed("etl", "r2", state="Completed"), failed("b", "r3", state="Completed")]
    )
    evaluate_and_send(store)
    store.emit_events([failed("etl", "r4", state="Completed")])  # nothing open: no resolve
    evaluate_and_send(store)
    trigger, resolve = (r.json() for r in receiver.at("/pd"))
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "legato:alert:etl-down:flow=etl"
    assert resolve == {
        "routing_key": "rk",
        "event_action": "resolve",
        "dedup_key": "legato:alert:etl-down:flow=etl",
    }


def test_a_send_notification_action_run_twice_enqueues_once(
    default_store: Store, receiver: Receiver
) -> None:
    store = default_store
    add_channel(store, "ops", "webhook", url=f"{receiver.url}/ops")
    action = parse_action(
        json.dumps({"type": "send-notification", "channels": ["ops"], "group_window": 60})
    )
    events = [failed("etl", "r1"), failed("etl", "r2")]
    store.emit_events(events)
    client = Client(store)
    firing = {"id": "f1", "reason": "test", "event_ids": []}
    for event, key in ((events[0], "f1:0"), (events[0], "f1:0"), (events[1], "f2:0")) * 2:
        ctx = ActionContext(client, key, event, {"id": "a", "name": "alert:twice"}, firing)
        send_notification(ctx, action)  # the evaluator died before recording it done
    assert [d.idempotency_key for d in store.list_deliveries()] == ["f1:0:ops"]
    [state] = store.list_alert_states("alert:twice")
    assert (state.data["count"], state.data["pending"]) == (2, 1)


def test_the_call_webhook_action_sends_a_signed_templated_request_once(
    default_store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = default_store
    monkeypatch.setenv("HOOK_URL", f"{receiver.url}/hook")
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    spec = {
        "name": "call-out",
        "trigger": {"expect": ["legato.flow-run.Failed"]},
        "actions": [
            {
                "type": "call-webhook",
                "url_env": "HOOK_URL",
                "method": "PUT",
                "secret_env": "HOOK_SECRET",
                "body": {"run": "{{ event.resource['legato.resource.name'] }}", "n": 1},
            }
        ],
    }
    automations.apply(store, [parse_automation(spec)])
    store.emit_events([failed("etl", "r1")])
    evaluator = Evaluator(Client(store))
    evaluator.run_until_caught_up()
    [row] = store.list_firings(store.list_automations()[0].id, limit=5)[0].actions
    evaluator.run_action(row)  # executed again: the same delivery
    Sender(store).send_due()
    [request] = receiver.at("/hook")
    assert request.method == "PUT"
    assert request.json() == {"run": "run-r1", "n": 1}
    expected = hmac.new(b"s3cret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Legato-Signature-256"] == f"sha256={expected}"
    assert "s3cret" not in json.dumps([c.config for c in store.list_notification_channels()])


def legato(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legato", *args], capture_output=True, text=True, timeout=120
    )


def test_alert_cli_and_project_file(default_store: Store, tmp_path: Path) -> None:
    store = default_store
    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(
        "alerts:\n"
        "  - name: etl\n"
        "    on: [flow-run.failed, worker-offline, deadline-missed]\n"
        "    match: {flow: etl, tag: nightly}\n"
        "    channels: ops\n"
        "    group_window: 5m\n"
        "    rate_limit: {ops: 10/h}\n"
    )
    result = legato("alert", "apply", "-f", str(alerts))
    assert (result.returncode, result.stdout) == (0, "created alert 'etl'\n"), result.stderr
    [listed] = json.loads(legato("alert", "ls", "--json").stdout)
    assert listed["on"] == [
        "legato.flow-run.Failed",
        "legato.worker.offline",
        "legato.flow-run.deadline-missed",
    ]
    assert (listed["channels"], listed["rate_limit"]) == (["ops"], {"ops": "10/h"})
    assert legato("alert", "delete", "etl").stdout == "deleted alert 'etl'\n"
    result = legato("alert", "delete", "etl")
    assert result.returncode != 0 and "no alert named 'etl'" in result.stderr

    alerts.write_text("- {name: bad, on: [flow-run.exploded], channels: [ops], rate_limit: x}")
    result = legato("alert", "apply", "-f", str(alerts))
    assert result.returncode != 0
    assert "flow-run.exploded" in result.stderr and "rate limit 'x'" in result.stderr
    assert store.list_automations() == []
    with pytest.raises(InvalidAutomationError, match="cannot group by 'colour'"):
        service.load_yaml("- {name: c, on: [flow-run.failed], channels: [o], group_by: colour}")

    project = tmp_path / "legato.yaml"
    project.write_text(
        "deployments: []\n"
        "alerts:\n"
        "  - {name: from-project, on: [flow-run.crashed], channels: [ops], group_window: 60}\n"
    )
    Client(store).deploy_project(project)
    assert store.get_automation("alert:from-project") is not None
