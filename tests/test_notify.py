"""Notifications end to end on both backends: real HTTP and SMTP receivers, the exact
payloads and signature, retries honouring Retry-After, order per channel, dead letters."""

from __future__ import annotations

import hashlib
import hmac
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.utils import format_datetime

import pytest

from _receiver import Receiver, running_receiver
from _waiting import wait_until
from legato._event_records import Event
from legato.errors import ConfigurationError, NotificationChannelNotFoundError
from legato.notify import enqueue_message, render_message
from legato.notify.channels import check_channel
from legato.notify.sender import NotificationDuty, Sender, retry_after_seconds
from legato.records import utcnow
from legato.store.base import Store

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def add(store: Store, name: str, type: str, **config: object) -> None:
    checked = check_channel(name, type, config)
    assert store.put_notification_channel(name, type, checked, overwrite=False, now=utcnow())


def message(store: Store, channel: str, key: str, **payload: object) -> int:
    return enqueue_message(
        store,
        channel=channel,
        subject=f"subject {key}",
        body=f"body {key}",
        idempotency_key=key,
        payload=payload,
    )


class Clock:
    """A sender's clock that tests move forward instead of sleeping."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def test_chat_and_pagerduty_payloads_are_exact(
    default_store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = default_store
    monkeypatch.setenv("SLACK_URL", f"{receiver.url}/slack/T0K3N")
    monkeypatch.setenv("PD_KEY", "routing-key-1")
    add(store, "slack", "slack", url_env="SLACK_URL")
    add(store, "teams", "teams", url=f"{receiver.url}/teams")
    add(store, "discord", "discord", url=f"{receiver.url}/discord")
    add(store, "pd", "pagerduty", routing_key_env="PD_KEY", events_url=f"{receiver.url}/pd")
    for name in ("slack", "teams", "discord"):
        message(store, name, f"{name}-1")
    message(store, "pd", "pd-1", dedup_key="run-7", details={"flow": "etl"})
    message(store, "pd", "pd-2", dedup_key="run-7", action="resolve")

    outcomes = Sender(store).send_due()

    assert sorted(o.state for o in outcomes) == ["delivered"] * 5
    [slack] = receiver.at("/slack/T0K3N")
    assert slack.json() == {"text": "*subject slack-1*\nbody slack-1"}
    assert slack.headers["Content-Type"] == "application/json"
    [discord] = receiver.at("/discord")
    assert discord.json() == {"content": "**subject discord-1**\nbody discord-1"}
    [teams] = receiver.at("/teams")
    card = teams.json()["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert [b["text"] for b in card["content"]["body"]] == ["subject teams-1", "body teams-1"]
    trigger, resolve = receiver.at("/pd")
    assert trigger.json() == {
        "routing_key": "routing-key-1",
        "event_action": "trigger",
        "dedup_key": "run-7",
        "payload": {
            "summary": "subject pd-1",
            "source": "legato",
            "severity": "error",
            "custom_details": {"body": "body pd-1", "flow": "etl"},
        },
    }
    assert resolve.json() == {
        "routing_key": "routing-key-1",
        "event_action": "resolve",
        "dedup_key": "run-7",
    }


def test_a_webhook_is_signed_over_its_exact_body(
    default_store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    add(default_store, "hook", "webhook", url=f"{receiver.url}/hook", secret_env="HOOK_SECRET")
    delivery_id = message(default_store, "hook", "k-1", run="r1")
    [outcome] = Sender(default_store).send_due()
    assert outcome.state == "delivered"
    [request] = receiver.at("/hook")
    expected = hmac.new(b"s3cret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Legato-Signature-256"] == f"sha256={expected}"
    timestamp = request.headers["X-Legato-Timestamp"]
    assert abs(int(timestamp) - utcnow().timestamp()) < 60
    assert request.json() == {
        "channel": "hook",
        "delivery_id": delivery_id,
        "idempotency_key": "k-1",
        "subject": "subject k-1",
        "body": "body k-1",
        "payload": {"run": "r1"},
        "timestamp": timestamp,
    }
    # A wrong secret would not match.
    assert hmac.new(b"other", request.body, hashlib.sha256).hexdigest() != expected


def test_email_goes_through_a_real_smtp_server(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, Envelope, Session

    received: list[Envelope] = []

    class Handler:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:  # a free port: the controller cannot take port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        add(
            default_store,
            "mail",
            "email",
            host="127.0.0.1",
            port=port,
            to=["ops@example.com", "dev@example.com"],
            **{"from": "legato@example.com"},
        )
        message(default_store, "mail", "m-1")
        [outcome] = Sender(default_store).send_due()
    finally:
        controller.stop()
    assert outcome.state == "delivered", outcome.error
    [envelope] = received
    assert envelope.mail_from == "legato@example.com"
    assert envelope.rcpt_tos == ["ops@example.com", "dev@example.com"]
    assert isinstance(envelope.content, bytes)
    mail = message_from_bytes(envelope.content)
    assert mail["Subject"] == "subject m-1"
    assert mail.get_payload().strip() == "body m-1"  # type: ignore[union-attr]


def test_apprise_urls_go_through_apprise(default_store: Store, receiver: Receiver) -> None:
    host = receiver.url.removeprefix("http://")
    add(default_store, "any", "apprise", url=f"json://{host}/apprise")
    message(default_store, "any", "a-1")
    [outcome] = Sender(default_store).send_due()
    assert outcome.state == "delivered", outcome.error
    [request] = receiver.at("/apprise")
    data = request.json()
    assert (data["title"], data["message"]) == ("subject a-1", "body a-1")


def test_429_answers_are_retried_until_delivered_in_order_per_channel(
    default_store: Store,
) -> None:
    def busy(path: str, seen: int) -> tuple[int, dict[str, str], bytes]:
        if seen < 3 and path == "/a":
            return 429, {"Retry-After": "0"}, b"slow down"
        if seen % 2 == 0 and path == "/b":
            return 503, {"Retry-After": "0"}, b"busy"
        return 200, {}, b"ok"

    with running_receiver(busy) as receiver:
        add(default_store, "a", "slack", url=f"{receiver.url}/a")
        add(default_store, "b", "discord", url=f"{receiver.url}/b")
        for n in range(5):
            message(default_store, "a", f"a{n}")
            message(default_store, "b", f"b{n}")
        sender = Sender(default_store, max_attempts=8)
        for _ in range(20):
            if not sender.send_due():
                break
        texts_a = [r.json()["text"] for r in receiver.at("/a")]
        texts_b = [r.json()["content"] for r in receiver.at("/b")]
    delivered = default_store.list_deliveries(state="delivered", limit=100)
    assert len(delivered) == 10
    # Each channel saw its messages in order: the first one retried, never overtaken.
    assert texts_a == ["*subject a0*\nbody a0"] * 4 + [
        f"*subject a{n}*\nbody a{n}" for n in range(1, 5)
    ]
    seen_b = list(dict.fromkeys(texts_b))
    assert seen_b == [f"**subject b{n}**\nbody b{n}" for n in range(5)]
    first = default_store.list_deliveries(channel="a", limit=10)[-1]
    assert (first.idempotency_key, first.attempts) == ("a0", 4)


def test_retry_after_is_honoured_in_seconds_and_as_a_date(default_store: Store) -> None:
    clock = Clock()
    clock.now += timedelta(seconds=5)  # after the message is enqueued below
    later = format_datetime(clock.now + timedelta(seconds=300), usegmt=True)
    answers = iter([(429, {"Retry-After": "120"}), (503, {"Retry-After": later}), (500, {})])

    def answer(path: str, seen: int) -> tuple[int, dict[str, str], bytes]:
        status, headers = next(answers)
        return status, headers, b"no"

    with running_receiver(answer) as receiver:
        add(default_store, "a", "slack", url=f"{receiver.url}/a")
        message(default_store, "a", "k")
        sender = Sender(default_store, clock=clock, backoff=30, backoff_cap=1200)
        [first] = sender.send_due()
        assert first.state == "pending" and first.next_attempt_at == clock.now + timedelta(
            seconds=120
        )
        assert sender.send_due() == []  # not due yet, and nothing overtakes it
        clock.now += timedelta(seconds=120)
        [second] = sender.send_due()
        assert second.next_attempt_at is not None
        assert abs((second.next_attempt_at - clock.now).total_seconds() - 180) <= 1
        clock.now = second.next_attempt_at
        [third] = sender.send_due()  # no Retry-After: the backoff after 3 failures
        assert third.next_attempt_at == clock.now + timedelta(seconds=120)
    assert retry_after_seconds("soon", clock.now) is None
    assert retry_after_seconds("999999", clock.now) == 3600


def test_a_receiver_that_always_fails_leaves_a_dead_letter(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: str, seen: int) -> tuple[int, dict[str, str], bytes]:
        return 500, {}, f"cannot post to {path}".encode()

    clock = Clock()
    clock.now += timedelta(seconds=5)  # after the messages are enqueued below
    with running_receiver(broken) as receiver:
        monkeypatch.setenv("SLACK_URL", f"{receiver.url}/services/T0K3N")
        add(default_store, "ops", "slack", url_env="SLACK_URL")
        first = message(default_store, "ops", "k1")
        second = message(default_store, "ops", "k2")
        sender = Sender(default_store, clock=clock, max_attempts=3, backoff=10, backoff_cap=15)
        states = []
        for _ in range(10):
            states += [(o.delivery_id, o.state) for o in sender.send_due()]
            clock.now += timedelta(minutes=1)
    assert states == [
        (first, "pending"),
        (first, "pending"),
        (first, "dead"),
        (second, "pending"),
        (second, "pending"),
        (second, "dead"),
    ]
    dead = default_store.get_delivery(first)
    assert dead is not None and dead.state == "dead" and dead.attempts == 3
    assert dead.last_error is not None and dead.last_error.startswith("attempt 3: HTTP 500")
    assert "T0K3N" not in dead.last_error  # the receiver echoed the secret URL: masked


def test_a_delivery_whose_sender_died_goes_dead_when_no_attempts_are_left(
    default_store: Store, receiver: Receiver
) -> None:
    add(default_store, "a", "slack", url=f"{receiver.url}/a")
    one = message(default_store, "a", "k")
    clock = Clock()
    clock.now += timedelta(seconds=5)
    [held] = default_store.claim_due_deliveries(owner="died", now=clock.now, lease_seconds=10)
    assert held.id == one
    sender = Sender(default_store, clock=clock, max_attempts=1)
    assert sender.send_due() == []  # the dead sender's lease still holds
    clock.now += timedelta(seconds=11)
    [outcome] = sender.send_due()
    assert (outcome.delivery_id, outcome.state) == (one, "dead")
    assert outcome.error is not None and "a sender stopped during attempt 1" in outcome.error
    assert receiver.at("/a") == []


def test_a_key_enqueued_twice_is_sent_once(default_store: Store, receiver: Receiver) -> None:
    add(default_store, "a", "slack", url=f"{receiver.url}/a")
    assert message(default_store, "a", "same") == message(default_store, "a", "same")
    Sender(default_store).send_due()
    assert Sender(default_store).send_due() == []
    assert len(receiver.at("/a")) == 1
    with pytest.raises(NotificationChannelNotFoundError, match="legato notify channel ls"):
        message(default_store, "nope", "x")


def test_a_missing_secret_variable_is_retried_with_a_clear_error(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_URL", raising=False)
    add(default_store, "a", "slack", url_env="NOT_SET_URL")
    message(default_store, "a", "k")
    [outcome] = Sender(default_store).send_due()
    assert outcome.state == "pending"
    assert outcome.error is not None and "NOT_SET_URL" in outcome.error


def test_the_leader_duty_sends_in_the_background(default_store: Store, receiver: Receiver) -> None:
    add(default_store, "a", "slack", url=f"{receiver.url}/a")
    message(default_store, "a", "k")
    duty = NotificationDuty(lambda: default_store, owner="w1", interval=0.05)
    duty.tick(leading=True)
    try:
        wait_until(lambda: receiver.at("/a"), what="the duty to send the message")
    finally:
        duty.stop()
    wait_until(
        lambda: default_store.list_deliveries(state="delivered"), what="the delivery recorded"
    )


def test_channel_configs_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="needs --url-env VAR"):
        check_channel("a", "slack", {})
    with pytest.raises(ConfigurationError, match="not an environment variable name"):
        check_channel("a", "slack", {"url_env": "https://x"})
    with pytest.raises(ConfigurationError, match="takes no 'host'"):
        check_channel("a", "slack", {"url": "https://x", "host": "h"})
    with pytest.raises(ConfigurationError, match="unknown channel type"):
        check_channel("a", "fax", {})
    with pytest.raises(ConfigurationError, match="not both"):
        check_channel("a", "webhook", {"url": "https://x", "secret": "s", "secret_env": "S"})


def flow_run_event(**payload: object) -> Event:
    return Event(
        id="e1",
        event="legato.flow-run.Failed",
        occurred=datetime(2024, 5, 1, 12, tzinfo=UTC),
        resource={
            "legato.resource.id": "legato.flow-run.abc123",
            "legato.resource.name": "brave-otter",
            "legato.state-name": "Failed",
        },
        related=(
            {
                "legato.resource.id": "legato.flow.etl",
                "legato.resource.role": "flow",
                "legato.resource.name": "etl",
            },
            {
                "legato.resource.id": "legato.deployment.nightly",
                "legato.resource.role": "deployment",
                "legato.resource.name": "nightly",
            },
        ),
        payload=payload,
    )


def test_the_default_message_tells_what_happened(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATO_UI_URL", "https://legato.example.com/")
    event = flow_run_event(
        to="failed",
        message="Flow run failed",
        attempt=2,
        error_type="ValueError",
        error_message="bad row 7\nline two",
        duration=75,
    )
    subject, body = render_message(event)
    assert subject == "etl run brave-otter is Failed"
    assert "Deployment: nightly" in body
    assert "State: Failed (Flow run failed)" in body
    assert "Attempt: 2" in body
    assert "Duration: 1m15s" in body
    assert "Run: https://legato.example.com/runs/abc123" in body
    assert body.endswith("Error:\nValueError: bad row 7\nline two")


def test_templates_are_sandboxed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEGATO_UI_URL", raising=False)
    subject, body = render_message(flow_run_event(), "{{ flow }} {{ state }}!\n{{ run_url }}")
    assert (subject, body) == ("etl Failed!", "None")
    with pytest.raises(ConfigurationError, match="does not render"):
        render_message(flow_run_event(), "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(ConfigurationError, match="does not render"):
        render_message(flow_run_event(), "{% if %}")
