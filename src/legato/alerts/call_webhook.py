"""The ``call-webhook`` action: a JSON request to a URL, through the outbox.

The action's URL (or the variable naming it) and HMAC secret variable make an
implicit ``webhook`` channel named ``webhook-<hash>`` (created on first use), so
the request is a delivery like any other: retried with backoff, honouring
``Retry-After``, dead-lettered, signed (``X-Legato-Signature-256``) when a
secret is given, and sent once per action key.
"""

from __future__ import annotations

import hashlib
import json
import re

from legato.automations.actions import ActionContext, register, render
from legato.automations.model import CallWebhook
from legato.errors import ConfigurationError
from legato.notify import check_channel, enqueue_message

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def channel_name(action: CallWebhook) -> str:
    """The implicit channel of ``action``: the same for the same URL and secret."""
    identity = json.dumps([action.url, action.url_env, action.secret_env])
    return "webhook-" + hashlib.sha256(identity.encode()).hexdigest()[:12]


@register("call-webhook")
def call_webhook(ctx: ActionContext, action: CallWebhook) -> str:
    store = ctx.client.store
    name = channel_name(action)
    if store.get_notification_channel(name) is None:
        # a webhook channel takes its URL plainly; the sender reads `url_env` all the same
        config = {"url": action.url or "https://from.env", "secret_env": action.secret_env}
        checked = check_channel(name, "webhook", config)
        if action.url_env is not None:
            if not _ENV_NAME.match(action.url_env):
                raise ConfigurationError(
                    f"url_env {action.url_env!r} is not an environment variable name; give "
                    f"the NAME of the variable that holds the webhook's URL"
                )
            del checked["url"]
            checked["url_env"] = action.url_env
        store.put_notification_channel(name, "webhook", checked, overwrite=False, now=store.clock())
    body = render(action.body, ctx.template_context())
    delivery = enqueue_message(
        store,
        channel=name,
        subject=f"{action.method} {action.url_env or 'webhook'}",
        body="",
        idempotency_key=ctx.key,
        payload={"request": {"method": action.method, "json": body}},
    )
    return f"delivery {delivery} on channel {name}"
