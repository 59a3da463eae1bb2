"""``legato notify``: channels with secrets that are never shown, test messages, the
outbox with its dead letters, and a worker leading the scheduler sending them."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from _receiver import Receiver, running_receiver
from _waiting import wait_until
from legato.notify import enqueue_message
from legato.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from conftest import Cli

SLACK_URL_TOKEN = "T00/B00/XoXoSeCrEtToKeN"
WEBHOOK_SECRET = "hunter2-plain-secret"
SMTP_PASSWORD = "pw-plain-secret-9"


def test_secrets_are_never_shown(cli: Cli) -> None:
    env = {"SLACK_URL": f"https://hooks.slack.example/services/{SLACK_URL_TOKEN}"}
    added = cli("notify", "channel", "add", "ops", "--type", "slack", "--url-env", "SLACK_URL")
    assert added.code == 0, str(added)
    assert "added slack channel 'ops'" in added.stdout
    hook = cli(
        "notify", "channel", "add", "hook", "--type", "webhook",
        "--url", "https://example.com/hook", "--secret", WEBHOOK_SECRET,
    )  # fmt: skip
    assert hook.code == 0, str(hook)
    mail = cli(
        "notify", "channel", "add", "mail", "--type", "email", "--host", "smtp.example.com",
        "--port", "587", "--starttls", "--from", "legato@example.com", "--to", "a@example.com",
        "--to", "b@example.com", "--user", "legato", "--password", SMTP_PASSWORD,
    )  # fmt: skip
    assert mail.code == 0, str(mail)
    outputs = [
        cli("notify", "channel", "ls", **env),
        cli("notify", "channel", "ls", "--json", **env),
        cli("notify", "channel", "show", "ops", **env),
        cli("notify", "channel", "show", "hook", "--json"),
        cli("notify", "channel", "show", "mail"),
    ]
    for result in outputs:
        assert result.code == 0, str(result)
        for secret in (SLACK_URL_TOKEN, WEBHOOK_SECRET, SMTP_PASSWORD):
            assert secret not in result.stdout + result.stderr
    assert "url: env:SLACK_URL" in outputs[2].stdout
    hook_json = outputs[3].json()
    assert hook_json["config"] == {"url": "https://example.com/hook", "secret": "****"}
    assert "password: ****" in outputs[4].stdout
    assert 'to: ["a@example.com", "b@example.com"]' in outputs[4].stdout
    listed = {c["name"]: c["type"] for c in outputs[1].json()}
    assert listed == {"hook": "webhook", "mail": "email", "ops": "slack"}

    again = cli("notify", "channel", "add", "ops", "--type", "slack", "--url-env", "OTHER")
    assert again.code != 0 and "--overwrite" in again.stderr
    bad = cli("notify", "channel", "add", "x", "--type", "slack")
    assert bad.code != 0 and "needs --url-env VAR" in bad.stderr
    assert cli("notify", "channel", "delete", "ops").code == 0
    gone = cli("notify", "channel", "show", "ops")
    assert gone.code != 0 and "no notification channel named 'ops'" in gone.stderr


def test_test_message_and_dead_letters(cli: Cli) -> None:
    def answer(path: str, seen: int) -> tuple[int, dict[str, str], bytes]:
        return (200, {}, b"ok") if path == "/good" else (500, {}, b"receiver broken")

    fast = {"LEGATO_NOTIFY_MAX_ATTEMPTS": "2", "LEGATO_NOTIFY_BACKOFF": "0.001"}
    with running_receiver(answer) as receiver:
        for name in ("good", "bad"):
            result = cli(
                "notify", "channel", "add", name, "--type", "discord",
                "--url", f"{receiver.url}/{name}",
            )  # fmt: skip
            assert result.code == 0, str(result)
        ok = cli("notify", "test", "good", **fast)
        assert ok.code == 0, str(ok)
        assert "delivered test message" in ok.stdout
        [request] = receiver.at("/good")
        assert request.json()["content"].startswith("**legato test message for channel 'good'**")

        failed = cli("notify", "test", "bad", **fast)
        assert failed.code == 1, str(failed)
        assert "HTTP 500: receiver broken" in failed.stderr
        sent = cli("notify", "send-due", "--once", **fast)
        assert sent.code == 0, str(sent)
        assert "bad: dead (attempt 2: HTTP 500: receiver broken)" in sent.stdout
        assert len(receiver.at("/bad")) == 2

    dead = cli("notify", "deliveries", "--state", "dead")
    assert dead.code == 0, str(dead)
    assert "bad" in dead.stdout and "HTTP 500" in dead.stdout and "good" not in dead.stdout
    listed = cli("notify", "deliveries", "--json").json()
    assert [(d["channel"], d["state"], d["attempts"]) for d in listed] == [
        ("bad", "dead", 2),
        ("good", "delivered", 1),
    ]
    only_good = cli("notify", "deliveries", "--channel", "good", "--json").json()
    assert [d["channel"] for d in only_good] == ["good"]


def test_the_worker_leading_the_scheduler_sends_the_outbox(cli: Cli) -> None:
    receiver: Receiver
    with running_receiver() as receiver:
        added = cli(
            "notify", "channel", "add", "ops", "--type", "slack", "--url-env", "SLACK_URL",
        )  # fmt: skip
        assert added.code == 0, str(added)
        store = SQLiteStore(cli.home / "legato.db")  # the CLI's own store
        enqueue_message(
            store, channel="ops", subject="run failed", body="etl", idempotency_key="k1"
        )
        worker = cli.popen("worker", "--queue", "none-here", SLACK_URL=f"{receiver.url}/hook")
        try:
            wait_until(lambda: receiver.at("/hook"), what="the worker to send the message")
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.communicate(timeout=60)
    assert receiver.at("/hook")[0].json() == {"text": "*run failed*\netl"}
    try:
        wait_until(lambda: store.list_deliveries(state="delivered"), what="the delivery recorded")
    finally:
        store.close()
