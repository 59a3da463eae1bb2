"""Channel types: what each one's config holds, how it is shown, and the request it sends.

A secret (a webhook URL with its token, an HMAC secret, a routing key, an SMTP
password) is stored by reference, as ``<field>_env``: the NAME of an environment
variable read when a message is sent. A secret given as a plain value (``<field>``)
is accepted, but every output masks it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from legato.errors import ConfigurationError
from legato.settings import secret_from_env

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SIGNATURE_HEADER = "X-Legato-Signature-256"
TIMESTAMP_HEADER = "X-Legato-Timestamp"
MASK = "****"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SEVERITIES = ("critical", "error", "warning", "info")


@dataclass(frozen=True)
class ChannelType:
    """``required``: fields that must be given (a secret one as value or ``_env``);
    ``secrets``: fields masked in output; ``fields``: every field it accepts."""

    required: tuple[str, ...]
    secrets: tuple[str, ...]
    fields: tuple[str, ...]


TYPES: dict[str, ChannelType] = {
    "slack": ChannelType(("url",), ("url",), ("url",)),
    "teams": ChannelType(("url",), ("url",), ("url",)),
    "discord": ChannelType(("url",), ("url",), ("url",)),
    "webhook": ChannelType(("url",), ("secret",), ("url", "secret")),
    "pagerduty": ChannelType(
        ("routing_key",), ("routing_key",), ("routing_key", "events_url", "severity")
    ),
    "email": ChannelType(
        ("host", "from", "to"),
        ("password",),
        ("host", "port", "from", "to", "starttls", "user", "password"),
    ),
    "apprise": ChannelType(("url",), ("url",), ("url",)),
}


def check_channel(name: str, type: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The config to store for channel ``name`` of ``type``, checked; raises
    `ConfigurationError` saying what is wrong and how to fix it."""
    if not _NAME.match(name):
        raise ConfigurationError(
            f"channel name {name!r} is not valid; use letters, digits, '.', '_' or '-' "
            f"(at most 100, starting with a letter or digit)"
        )
    kind = TYPES.get(type)
    if kind is None:
        raise ConfigurationError(
            f"unknown channel type {type!r}; use one of: {', '.join(sorted(TYPES))}"
        )
    checked: dict[str, Any] = {}
    for key, value in config.items():
        if value is None or value == "" or value == ():
            continue
        field = key[:-4] if key.endswith("_env") else key
        if field not in kind.fields or (key.endswith("_env") and field not in kind.secrets):
            raise ConfigurationError(
                f"a {type} channel takes no {key.replace('_', '-')!r}; it takes: "
                f"{', '.join(_option(f, kind) for f in kind.fields)}"
            )
        if key.endswith("_env") and not _ENV_NAME.match(str(value)):
            raise ConfigurationError(
                f"{value!r} is not an environment variable name; give the NAME of the "
                f"variable that holds the {field}, e.g. --{field.replace('_', '-')}-env MY_VAR"
            )
        checked[key] = value
    for field in kind.required:
        if field not in checked and f"{field}_env" not in checked:
            raise ConfigurationError(
                f"a {type} channel needs {_option(field, kind)}; see "
                f"`legato notify channel add --help`"
            )
    for field in kind.secrets:
        if field in checked and f"{field}_env" in checked:
            raise ConfigurationError(
                f"give the {field} once: --{field.replace('_', '-')}-env VAR (preferred) "
                f"or --{field.replace('_', '-')}, not both"
            )
    if "port" in checked:
        port = checked["port"]
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigurationError(f"port {port!r} is not a TCP port; use 1 to 65535, e.g. 587")
    if "to" in checked:
        recipients = checked["to"]
        if isinstance(recipients, str):
            recipients = [recipients]
        checked["to"] = [str(r) for r in recipients]
    if "severity" in checked and checked["severity"] not in _SEVERITIES:
        raise ConfigurationError(
            f"severity {checked['severity']!r} is not one of {', '.join(_SEVERITIES)}"
        )
    for field in ("url", "events_url"):
        url = checked.get(field)
        if (
            isinstance(url, str)
            and type != "apprise"
            and not url.startswith(("https://", "http://"))
        ):
            raise ConfigurationError(
                f"{field.replace('_', ' ')} {_shown_url(url)} must start with https:// or http://"
            )
    if type == "apprise":
        require_apprise()
    return checked


def _option(field: str, kind: ChannelType) -> str:
    flag = "--" + field.replace("_", "-")
    return f"{flag}-env VAR (or {flag})" if field in kind.secrets else flag


def _shown_url(url: str) -> str:
    return url.split("://", 1)[0] + "://" + MASK if "://" in url else MASK


def shown_config(type: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The config for people: a secret by reference as ``env:NAME``, a plain one masked."""
    kind = TYPES.get(type)
    secrets = kind.secrets if kind is not None else ()
    shown: dict[str, Any] = {}
    for key, value in config.items():
        if key.endswith("_env"):
            shown[key[:-4]] = f"env:{value}"
        elif key in secrets or kind is None:
            shown[key] = MASK
        else:
            shown[key] = value
    return shown


def resolve_secret(channel: str, config: Mapping[str, Any], field: str) -> str | None:
    """The value of ``field`` (plain, or read now from the variable it names); raises
    `ConfigurationError` when its variable is unset."""
    env = config.get(f"{field}_env")
    if env is None:
        value = config.get(field)
        return None if value is None else str(value)
    value = secret_from_env(str(env))
    if value is None:
        raise ConfigurationError(
            f"the environment variable {env} (the {field} of channel '{channel}') is not set "
            f"where the notification sender runs; set it there (worker or "
            f"`legato notify send-due`)"
        )
    return value


def require_apprise() -> ModuleType:
    """The apprise module (``legato[notify]``); a missing one is one clear error."""
    try:
        with warnings.catch_warnings():
            # apprise imports modules that Python deprecates (imghdr): its noise, not ours
            warnings.simplefilter("ignore", DeprecationWarning)
            import apprise
    except ImportError:
        from legato.errors import MissingExtraError

        raise MissingExtraError("notify", "apprise", "an apprise channel") from None
    return apprise


# --- the requests each type sends ------------------------------------------------------


def compact(data: Any) -> bytes:
    """The exact bytes a JSON request sends (and a webhook signs)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def slack_body(subject: str, body: str) -> dict[str, Any]:
    return {"text": f"*{subject}*\n{body}" if body else f"*{subject}*"}


def discord_body(subject: str, body: str) -> dict[str, Any]:
    text = f"**{subject}**\n{body}" if body else f"**{subject}**"
    return {"content": text[:2000]}


def teams_body(subject: str, body: str) -> dict[str, Any]:
    """An Adaptive Card, as a Teams Workflows ("when a webhook request is received")
    incoming webhook takes it."""
    blocks: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": subject, "weight": "Bolder", "size": "Medium", "wrap": True}
    ]
    if body:
        blocks.append({"type": "TextBlock", "text": body, "wrap": True})
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": blocks,
                },
            }
        ],
    }


def pagerduty_body(
    routing_key: str,
    subject: str,
    body: str,
    payload: Mapping[str, Any],
    *,
    severity: str,
    dedup_key: str,
) -> dict[str, Any]:
    """A PagerDuty Events API v2 event: ``payload["action"]`` "resolve" resolves the
    alert with the same ``dedup_key``; anything else triggers it."""
    if payload.get("action") == "resolve":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    details = {"body": body}
    extra = payload.get("details")
    if isinstance(extra, Mapping):
        details.update({str(k): v for k, v in extra.items()})
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": subject[:1024] or "legato notification",
            "source": str(payload.get("source") or "legato"),
            "severity": str(payload.get("severity") or severity),
            "custom_details": details,
        },
    }


def signature(secret: str, body: bytes) -> str:
    """The ``X-Legato-Signature-256`` header value: ``sha256=`` and the hex HMAC-SHA256
    of the exact body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
