"""Webhooks: an HTTP request, authenticated, rendered by a stored template into an event.

A webhook's template is sandboxed Jinja2 that renders JSON: an object with
``event``, ``resource`` and optionally ``related``, ``payload``, ``id``,
``occurred`` and ``follows`` (the arguments of `legato.emit_event`). Its context:
``body`` (the parsed JSON, or the form as a dict), ``raw_body`` (the text),
``headers`` (lower-case names), ``query``, ``method`` and ``slug``. A template
that gives an ``id`` makes a redelivered request store its event once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from legato._event_records import Event
from legato._webhook_records import AUTH_KINDS, Webhook
from legato.engine.events import build_event
from legato.errors import (
    ConfigurationError,
    InvalidEventError,
    MissingExtraError,
    WebhookAuthError,
    WebhookNotFoundError,
    WebhookTemplateError,
)
from legato.settings import secret_from_env

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

    from legato.store.base import Store

MAX_BODY_BYTES = 1024 * 1024
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SIGNATURE_HEADER = "x-hub-signature-256"
SECRET_HEADER = "x-legato-webhook-secret"
_EVENT_KEYS = frozenset({"event", "resource", "related", "payload", "id", "occurred", "follows"})

DEFAULT_TEMPLATE = """{
  "event": "webhook.received",
  "resource": {"legato.resource.id": {{ ("legato.webhook." ~ slug) | tojson }}},
  "payload": {{ (body if body is mapping else {"body": body}) | tojson }}
}"""


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What a webhook sees of an HTTP request."""

    raw_body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"

    def header(self, name: str) -> str | None:
        return {k.lower(): v for k, v in self.headers.items()}.get(name)


def check_slug(slug: str) -> str:
    if not SLUG_PATTERN.match(slug):
        raise ConfigurationError(
            f"invalid webhook slug {slug[:70]!r}: use 1 to 64 lower-case letters, digits, "
            "'-' and '_', starting with a letter or digit, e.g. 'github-push'"
        )
    return slug


def _environment() -> SandboxedEnvironment:
    try:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import SandboxedEnvironment
    except ImportError:
        raise MissingExtraError("server", "jinja2", "a webhook template") from None

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def check_template(template: str) -> str:
    """``template`` when it compiles (else `WebhookTemplateError` with the line)."""
    from jinja2 import TemplateSyntaxError

    try:
        _environment().from_string(template)
    except TemplateSyntaxError as exc:
        raise WebhookTemplateError(
            f"the webhook template does not compile: {exc.message} (line {exc.lineno})"
        ) from None
    return template


def make_webhook(
    slug: str,
    *,
    template: str | None = None,
    auth: str = "none",
    secret_env: str | None = None,
    secret: str | None = None,
    description: str = "",
    enabled: bool = True,
) -> Webhook:
    """A checked Webhook definition (the default template when none is given)."""
    check_slug(slug)
    if auth not in AUTH_KINDS:
        raise ConfigurationError(
            f"webhook auth must be one of {', '.join(AUTH_KINDS)}, not {auth!r}"
        )
    if auth == "none" and (secret_env or secret):
        raise ConfigurationError("a webhook with auth 'none' takes no secret")
    if auth != "none" and bool(secret_env) == bool(secret):
        raise ConfigurationError(
            f"a webhook with auth '{auth}' needs its secret: the name of an environment "
            "variable of the server (--secret-env / --hmac-secret-env), or the secret itself"
        )
    if secret_env is not None and not _ENV_NAME.match(secret_env):
        raise ConfigurationError(
            f"{secret_env[:70]!r} is not an environment variable name (letters, digits and "
            "'_'): give the NAME of the variable that holds the secret, not the secret"
        )
    text = DEFAULT_TEMPLATE if template is None else check_template(template)
    return Webhook(
        slug=slug,
        template=text,
        auth=auth,  # checked against AUTH_KINDS above
        secret_env=secret_env,
        secret=secret,
        description=description,
        enabled=enabled,
    )


def _secret_of(webhook: Webhook) -> str:
    if webhook.secret is not None:
        return webhook.secret
    name = webhook.secret_env or ""
    value = secret_from_env(name)
    if value is None:
        raise WebhookAuthError(
            f"webhook '{webhook.slug}' cannot check requests: the environment variable "
            f"{name} that holds its secret is not set where the server runs; set it and "
            "restart the server",
            status=503,
        )
    return value


def check_auth(webhook: Webhook, request: WebhookRequest) -> None:
    """Raise `WebhookAuthError` (401 no credential, 403 a wrong one) unless ``request``
    carries the webhook's secret or a valid signature of its body."""
    if webhook.auth == "none":
        return
    secret = _secret_of(webhook)
    if webhook.auth == "hmac":
        given = request.header(SIGNATURE_HEADER)
        if not given:
            raise WebhookAuthError(
                f"webhook '{webhook.slug}' needs an 'X-Hub-Signature-256: sha256=<hex>' "
                "header: the HMAC-SHA256 of the body keyed with the webhook's secret",
                status=401,
            )
        expected = (
            "sha256=" + hmac.new(secret.encode(), request.raw_body, hashlib.sha256).hexdigest()
        )
        if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
            raise WebhookAuthError(
                f"the X-Hub-Signature-256 of this request to webhook '{webhook.slug}' does not "
                "match its body: check the secret the sender signs with",
                status=403,
            )
        return
    given_secret = request.header(SECRET_HEADER)
    if given_secret is None:
        scheme, _, value = (request.header("authorization") or "").partition(" ")
        given_secret = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    if given_secret is None:
        raise WebhookAuthError(
            f"webhook '{webhook.slug}' needs its secret in 'Authorization: Bearer <secret>' "
            "or 'X-Legato-Webhook-Secret: <secret>'",
            status=401,
        )
    if not hmac.compare_digest(given_secret.encode(), secret.encode()):
        raise WebhookAuthError(f"wrong secret for webhook '{webhook.slug}'", status=403)


def parse_body(request: WebhookRequest) -> Any:
    """The body for templates: JSON decoded, a form as a dict (a field given several
    times as a list), else the text (None when empty)."""
    text = request.raw_body.decode("utf-8", errors="replace")
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        form = parse_qs(text, keep_blank_values=True)
        return {k: v[0] if len(v) == 1 else v for k, v in form.items()}
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        if content_type.endswith("json"):
            raise WebhookTemplateError("the request body is not valid JSON") from None
        return text


def render_event(webhook: Webhook, request: WebhookRequest) -> Event:
    """The event ``webhook``'s template makes of ``request``, checked
    (`WebhookTemplateError` or `InvalidEventError` saying what is wrong)."""
    from jinja2 import TemplateError

    context = {
        "body": parse_body(request),
        "raw_body": request.raw_body.decode("utf-8", errors="replace"),
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "query": dict(request.query),
        "method": request.method,
        "slug": webhook.slug,
    }
    try:
        rendered = _environment().from_string(webhook.template).render(context)
    except TemplateError as exc:
        raise WebhookTemplateError(
            f"the template of webhook '{webhook.slug}' failed: {exc.message or type(exc).__name__}"
        ) from None
    except Exception as exc:  # the template's own expressions: 1/0, int("x"), range(10**9)
        raise WebhookTemplateError(
            f"the template of webhook '{webhook.slug}' failed: {type(exc).__name__}: {exc}"
        ) from None
    try:
        data = json.loads(rendered)
    except ValueError as exc:
        raise WebhookTemplateError(
            f"the template of webhook '{webhook.slug}' did not render JSON ({exc}); "
            "use the tojson filter for values: {{ body.name | tojson }}"
        ) from None
    if not isinstance(data, dict):
        raise WebhookTemplateError(
            f"the template of webhook '{webhook.slug}' must render a JSON object with "
            f'"event" and "resource", not {type(data).__name__}'
        )
    unknown = sorted(set(data) - _EVENT_KEYS)
    if unknown:
        raise WebhookTemplateError(
            f"the template of webhook '{webhook.slug}' rendered unknown keys {unknown}; an "
            f"event has {', '.join(sorted(_EVENT_KEYS))}"
        )
    occurred = data.get("occurred")
    if isinstance(occurred, str):
        text = occurred
        try:
            occurred = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidEventError(
                f"occurred {text[:40]!r} is not an ISO 8601 time like 2026-11-30T12:00:00+00:00"
            ) from None
    return build_event(
        data.get("event"),
        data.get("resource"),
        data.get("related"),
        data.get("payload"),
        id=data.get("id"),
        occurred=occurred,
        follows=data.get("follows"),
    )


def receive_webhook(store: Store, slug: str, request: WebhookRequest) -> tuple[Event, bool]:
    """Authenticate ``request`` for webhook ``slug``, render and store its event.
    Returns the event and whether it was new (False: its id was stored before)."""
    webhook = store.get_webhook(slug)
    if webhook is None or not webhook.enabled:
        raise WebhookNotFoundError(slug, disabled=webhook is not None)
    check_auth(webhook, request)
    event = render_event(webhook, request)
    [seq] = store.emit_events([event])
    return event, seq is not None
