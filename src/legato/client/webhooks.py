"""The webhook methods of `legato.client.Client`: define webhooks and receive requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from legato._event_records import Event
from legato._webhook_records import Webhook
from legato.engine.webhooks import (
    WebhookRequest,
    check_slug,
    make_webhook,
    receive_webhook,
    render_event,
)
from legato.errors import WebhookExistsError, WebhookNotFoundError
from legato.records import utcnow

if TYPE_CHECKING:
    from legato.store.base import Store


class WebhookClientOps:
    """Webhooks: ``POST /hooks/{slug}`` turns a request into an event (see
    `legato.engine.webhooks`)."""

    @property
    def store(self) -> Store:  # provided by Client
        raise NotImplementedError

    def create_webhook(
        self,
        slug: str,
        *,
        template: str | None = None,
        auth: str = "none",
        secret_env: str | None = None,
        secret: str | None = None,
        description: str = "",
        overwrite: bool = False,
    ) -> Webhook:
        """Store a webhook (`WebhookExistsError` when the slug is taken, unless
        ``overwrite``). Without ``template``, the default: event ``webhook.received``
        about ``legato.webhook.<slug>`` with the body as payload."""
        webhook = make_webhook(
            slug,
            template=template,
            auth=auth,
            secret_env=secret_env,
            secret=secret,
            description=description,
        )
        if not self.store.put_webhook(webhook, overwrite=overwrite, now=utcnow()):
            raise WebhookExistsError(slug)
        return self.get_webhook(slug)

    def get_webhook(self, slug: str) -> Webhook:
        found = self.store.get_webhook(check_slug(slug))
        if found is None:
            raise WebhookNotFoundError(slug)
        return found

    def webhooks(self) -> list[Webhook]:
        return self.store.list_webhooks()

    def set_webhook_enabled(self, slug: str, enabled: bool) -> None:
        if not self.store.set_webhook_enabled(check_slug(slug), enabled, now=utcnow()):
            raise WebhookNotFoundError(slug)

    def delete_webhook(self, slug: str) -> None:
        if not self.store.delete_webhook(check_slug(slug)):
            raise WebhookNotFoundError(slug)

    def receive_webhook(self, slug: str, request: WebhookRequest) -> tuple[Event, bool]:
        """Authenticate, render and store one request's event; (event, new)."""
        return receive_webhook(self.store, slug, request)

    def render_webhook(self, slug: str, request: WebhookRequest) -> Event:
        """The event ``request`` would make, without authenticating or storing it."""
        return render_event(self.get_webhook(slug), request)
