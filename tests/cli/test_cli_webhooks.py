"""``legato webhook create | ls | show | enable | disable | delete | test``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from legato.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from conftest import Cli

TEMPLATE = """{
  "event": "shop.order.paid",
  "id": {{ ("order-" ~ body.order) | tojson }},
  "resource": {"legato.resource.id": {{ ("shop.order." ~ body.order) | tojson }}},
  "payload": {"amount": {{ body.amount | tojson }}, "via": {{ headers["x-via"] | tojson }}}
}"""


def test_create_list_show_test_and_delete_webhooks(cli: Cli, tmp_path: Path) -> None:
    template = tmp_path / "paid.json.j2"
    template.write_text(TEMPLATE)
    result = cli(
        "webhook",
        "create",
        "paid",
        "--template",
        str(template),
        "--hmac-secret-env",
        "SHOP_SECRET",
        "--description",
        "payments",
    )
    assert result.code == 0, str(result)
    assert "POST /hooks/paid" in result.stdout
    result = cli("webhook", "create", "plain", "--secret", "v3ry-s3cret")
    assert result.code == 0, str(result)

    listed = cli("webhook", "ls")
    assert "paid" in listed.stdout and "$SHOP_SECRET" in listed.stdout
    assert "v3ry-s3cret" not in listed.stdout and "********" in listed.stdout
    as_json = cli("webhook", "ls", "--json").json()
    assert [(w["slug"], w["auth"], w["secret"]) for w in as_json] == [
        ("paid", "hmac", None),
        ("plain", "secret", "********"),
    ]
    shown = cli("webhook", "show", "plain")
    assert "v3ry-s3cret" not in shown.stdout and "webhook.received" in shown.stdout
    assert cli("webhook", "show", "paid", "--json").json()["template"] == TEMPLATE

    tested = cli(
        "webhook", "test", "paid", "--body", '{"order": 7, "amount": 12.5}', "--header", "X-Via=cli"
    )
    assert tested.code == 0, str(tested)
    event = tested.json()
    assert (event["id"], event["event"]) == ("order-7", "shop.order.paid")
    assert event["payload"] == {"amount": 12.5, "via": "cli"}
    emitted = cli(
        "webhook",
        "test",
        "paid",
        "--body",
        '{"order": 8, "amount": 1}',
        "--header",
        "X-Via=cli",
        "--emit",
    )
    assert emitted.code == 0, str(emitted)
    store = SQLiteStore(cli.home / "legato.db")
    try:  # only the --emit one was stored
        assert [e.id for e in store.list_events()] == ["order-8"]
    finally:
        store.close()

    assert cli("webhook", "disable", "paid").code == 0
    assert cli("webhook", "show", "paid", "--json").json()["enabled"] is False
    assert cli("webhook", "enable", "paid").code == 0
    assert cli("webhook", "delete", "paid").code == 0
    missing = cli("webhook", "show", "paid")
    assert missing.code == 1 and "no webhook 'paid'" in missing.stderr


def test_webhook_mistakes_are_one_clear_line(cli: Cli) -> None:
    both = cli("webhook", "create", "x", "--secret-env", "A", "--hmac-secret-env", "B")
    assert both.code == 2 and "give one of" in both.stderr
    assert "not compile" in cli("webhook", "create", "x", "--template-text", "{{ oops").stderr
    assert "invalid webhook slug" in cli("webhook", "create", "Not A Slug").stderr
    secret_as_name = cli("webhook", "create", "x", "--secret-env", "hunter 2")
    assert "not an environment variable name" in secret_as_name.stderr
    assert cli("webhook", "create", "x").code == 0
    taken = cli("webhook", "create", "x")
    assert taken.code == 2 and "--overwrite" in taken.stderr
    assert cli("webhook", "create", "x", "--overwrite", "--secret", "s").code == 0
    bad_body = cli("webhook", "test", "x", "--body", "{nope")
    assert bad_body.code == 2 and "not valid JSON" in bad_body.stderr
    assert cli("webhook", "ls", "--json").json()[0]["auth"] == "secret"
