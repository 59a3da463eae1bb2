"""The webhook record: a stored mapping from an HTTP request to an event (`legato webhook`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

WebhookAuth = Literal["none", "secret", "hmac"]
AUTH_KINDS: tuple[WebhookAuth, ...] = ("none", "secret", "hmac")
MASK = "********"


@dataclass(frozen=True, slots=True)
class Webhook:
    """One webhook, answered at ``POST /hooks/{slug}``.

    ``template`` (sandboxed Jinja2) renders the request into an event's JSON.
    ``auth``: ``none``, ``secret`` (a shared secret in a header) or ``hmac`` (a
    GitHub-style ``X-Hub-Signature-256``). The secret is named by ``secret_env``, an
    environment variable of the server, or given plainly as ``secret`` (then never
    shown back: see `masked_secret`)."""

    slug: str
    template: str
    auth: WebhookAuth = "none"
    secret_env: str | None = None
    secret: str | None = None
    description: str = ""
    enabled: bool = True
    created: datetime | None = None
    updated: datetime | None = None

    @property
    def masked_secret(self) -> str | None:
        return None if self.secret is None else MASK

    def to_dict(self) -> dict[str, object]:
        """JSON-ready data with the secret masked."""
        return {
            "slug": self.slug,
            "description": self.description,
            "auth": self.auth,
            "secret_env": self.secret_env,
            "secret": self.masked_secret,
            "enabled": self.enabled,
            "template": self.template,
            "created": self.created.isoformat() if self.created else None,
            "updated": self.updated.isoformat() if self.updated else None,
        }
