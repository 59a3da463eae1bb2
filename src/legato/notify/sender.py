"""The sender: works through the outbox, one attempt per claimed delivery.

A pass claims due deliveries under a lease (see
`legato.store.base_notifications`), sends each, and records the outcome:
delivered; or, after a failure, pending again after an exponential backoff
(``LEGATO_NOTIFY_BACKOFF`` doubling up to ``LEGATO_NOTIFY_BACKOFF_CAP``), or after
the delay a 429 or 503 answer asked for in ``Retry-After`` (seconds or an HTTP
date); after ``LEGATO_NOTIFY_MAX_ATTEMPTS`` attempts the delivery is dead, with
its last error. Secrets are read from the environment at send time and never
appear in a recorded error.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from legato._notification_records import Delivery, NotificationChannel
from legato.errors import ConfigurationError, LegatoError, NotificationSendError
from legato.notify import channels as ch
from legato.records import utcnow
from legato.settings import notify_backoff_seconds, notify_max_attempts, notify_timeout

if TYPE_CHECKING:
    import httpx

    from legato.store.base import Store

MAX_RETRY_AFTER = 3600.0
MAX_ROUNDS = 50  # claims per pass: bounded, so a pass never holds its caller for long


@dataclass(frozen=True)
class Outcome:
    """What one attempt did: ``state`` delivered, pending (will retry) or dead."""

    delivery_id: int
    channel: str
    state: str
    attempts: int
    error: str | None = None
    next_attempt_at: datetime | None = None


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """The delay a ``Retry-After`` header asks for (seconds or an HTTP date), capped at an
    hour; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER)


class Sender:
    """Sends due deliveries from ``store``; ``owner`` names this sender's claims."""

    def __init__(
        self,
        store: Store,
        *,
        owner: str | None = None,
        max_attempts: int | None = None,
        backoff: float | None = None,
        backoff_cap: float | None = None,
        timeout: float | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        default_backoff, default_cap = notify_backoff_seconds()
        self.store = store
        self.owner = owner or f"{os.uname().nodename}-{os.getpid()}-{id(self):x}"
        self.max_attempts = max_attempts if max_attempts is not None else notify_max_attempts()
        self.backoff = backoff if backoff is not None else default_backoff
        self.backoff_cap = backoff_cap if backoff_cap is not None else default_cap
        self.timeout = timeout if timeout is not None else notify_timeout()
        self.lease_seconds = self.timeout * 3 + 30
        self.clock = clock
        self._http: httpx.Client | None = None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def send_due(self, *, limit: int = 20) -> list[Outcome]:
        """One pass: send what is due now (channels in parallel order, each channel's
        deliveries one after another); the outcomes, in sending order."""
        outcomes: list[Outcome] = []
        for _ in range(MAX_ROUNDS):
            claimed = self.store.claim_due_deliveries(
                owner=self.owner, now=self.clock(), lease_seconds=self.lease_seconds, limit=limit
            )
            if not claimed:
                break
            outcomes.extend(self._deliver(delivery) for delivery in claimed)
        return outcomes

    def backoff_delay(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones."""
        return float(min(self.backoff_cap, self.backoff * 2 ** max(0, attempts - 1)))

    # --- one delivery ----------------------------------------------------------------

    def _deliver(self, delivery: Delivery) -> Outcome:
        channel = self.store.get_notification_channel(delivery.channel)
        if channel is None:
            error = (
                f"channel '{delivery.channel}' does not exist (deleted?); add it again with "
                f"`legato notify channel add` and enqueue the message again"
            )
            self.store.mark_dead(delivery.id, owner=self.owner, error=error)
            return Outcome(delivery.id, delivery.channel, "dead", delivery.attempts, error)
        if delivery.attempts > self.max_attempts:  # claimed again after a sender died
            error = (
                f"a sender stopped during attempt {delivery.attempts - 1} and no attempts are "
                f"left (LEGATO_NOTIFY_MAX_ATTEMPTS={self.max_attempts})"
            )
            self.store.mark_dead(delivery.id, owner=self.owner, error=error)
            return Outcome(delivery.id, delivery.channel, "dead", delivery.attempts, error)
        try:
            self._transmit(channel, delivery)
        except NotificationSendError as exc:
            return self._failed(delivery, str(exc), exc.retry_after)
        except ConfigurationError as exc:  # a secret's variable unset, apprise missing
            return self._failed(delivery, str(exc), None)
        except (KeyError, TypeError, ValueError) as exc:  # a config stored by hand, bad text
            problem = f"channel '{channel.name}' cannot send it: {type(exc).__name__}: {exc}"
            return self._failed(delivery, problem, None)
        now = self.clock()
        self.store.mark_delivered(delivery.id, owner=self.owner, now=now)
        return Outcome(delivery.id, delivery.channel, "delivered", delivery.attempts)

    def _failed(self, delivery: Delivery, error: str, retry_after: float | None) -> Outcome:
        error = f"attempt {delivery.attempts}: {error}"
        if delivery.attempts >= self.max_attempts:
            self.store.mark_dead(delivery.id, owner=self.owner, error=error)
            return Outcome(delivery.id, delivery.channel, "dead", delivery.attempts, error)
        delay = retry_after if retry_after is not None else self.backoff_delay(delivery.attempts)
        when = self.clock() + timedelta(seconds=delay)
        self.store.mark_retry(delivery.id, owner=self.owner, next_attempt_at=when, error=error)
        return Outcome(delivery.id, delivery.channel, "pending", delivery.attempts, error, when)

    def _transmit(self, channel: NotificationChannel, delivery: Delivery) -> None:
        config = channel.config
        name, subject, body = channel.name, delivery.subject, delivery.body
        payload: Mapping[str, Any] = delivery.payload
        if channel.type == "email":
            self._send_email(channel, subject, body)
            return
        if channel.type == "apprise":
            self._send_apprise(channel, subject, body)
            return
        headers = {"Content-Type": "application/json", "User-Agent": "legato-notify"}
        method = "POST"
        data: Any
        secrets: list[str] = []
        if channel.type == "pagerduty":
            key = ch.resolve_secret(name, config, "routing_key") or ""
            secrets.append(key)
            url = str(config.get("events_url") or ch.PAGERDUTY_EVENTS_URL)
            dedup = str(payload.get("dedup_key") or delivery.group_key or delivery.idempotency_key)
            data = ch.pagerduty_body(
                key,
                subject,
                body,
                payload,
                severity=str(config.get("severity") or "error"),
                dedup_key=dedup,
            )
        else:
            url = ch.resolve_secret(name, config, "url") or ""
            if channel.type != "webhook":
                secrets += _url_secrets(url)
            if channel.type == "slack":
                data = ch.slack_body(subject, body)
            elif channel.type == "discord":
                data = ch.discord_body(subject, body)
            elif channel.type == "teams":
                data = ch.teams_body(subject, body)
            elif channel.type == "webhook":
                timestamp = str(int(self.clock().timestamp()))
                data = {
                    "channel": name,
                    "delivery_id": delivery.id,
                    "idempotency_key": delivery.idempotency_key,
                    "subject": subject,
                    "body": body,
                    "payload": dict(payload),
                    "timestamp": timestamp,
                }
                request = payload.get("request")  # a call-webhook action's own request
                if isinstance(request, Mapping):
                    data, method = request.get("json"), str(request.get("method") or "POST")
                headers[ch.TIMESTAMP_HEADER] = timestamp
                headers["Idempotency-Key"] = delivery.idempotency_key
            else:
                raise NotificationSendError(
                    f"channel '{name}' has type {channel.type!r}, which this legato cannot "
                    f"send; upgrade legato or replace the channel"
                )
        content = ch.compact(data)
        if channel.type == "webhook":
            secret = ch.resolve_secret(name, config, "secret")
            if secret is not None:
                secrets.append(secret)
                headers[ch.SIGNATURE_HEADER] = ch.signature(secret, content)
        self._post(url, content, headers, secrets, method)

    def _client(self) -> httpx.Client:
        if self._http is None:
            try:
                import httpx
            except ImportError:
                from legato.errors import MissingExtraError

                raise MissingExtraError("notify", "httpx", "sending notifications") from None
            self._http = httpx.Client(timeout=self.timeout, follow_redirects=False)
        return self._http

    def _post(
        self,
        url: str,
        content: bytes,
        headers: dict[str, str],
        secrets: list[str],
        method: str = "POST",
    ) -> None:
        import httpx

        try:
            response = self._client().request(method, url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise NotificationSendError(
                _redact(f"request failed: {type(exc).__name__}: {exc}", secrets)
            ) from None
        if 200 <= response.status_code < 300:
            return
        retry_after = None
        if response.status_code in (429, 503):
            retry_after = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
        text = " ".join(response.text.split())[:200]
        raise NotificationSendError(
            _redact(f"HTTP {response.status_code}: {text}".rstrip(": "), secrets),
            retry_after=retry_after,
        )

    def _send_email(self, channel: NotificationChannel, subject: str, body: str) -> None:
        config = channel.config
        password = ch.resolve_secret(channel.name, config, "password")
        starttls = bool(config.get("starttls"))
        port = int(config.get("port") or (587 if starttls else 25))
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = str(config["from"])
        message["To"] = ", ".join(config["to"])
        message.set_content(body or subject)
        try:
            with smtplib.SMTP(str(config["host"]), port, timeout=self.timeout) as smtp:
                if starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if config.get("user"):
                    smtp.login(str(config["user"]), password or "")
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise NotificationSendError(
                _redact(f"SMTP {config['host']}:{port}: {type(exc).__name__}: {exc}", [password])
            ) from None

    def _send_apprise(self, channel: NotificationChannel, subject: str, body: str) -> None:
        url = ch.resolve_secret(channel.name, channel.config, "url") or ""
        apprise = ch.require_apprise()
        with warnings.catch_warnings():
            # apprise loads its plugins lazily, some importing modules Python deprecates
            warnings.simplefilter("ignore", DeprecationWarning)
            sender = apprise.Apprise()
            accepted = sender.add(url)
            sent = accepted and sender.notify(body=body or subject, title=subject)
        if not accepted:
            raise NotificationSendError(
                f"channel '{channel.name}': apprise does not accept its URL; check it against "
                f"apprise's list of services"
            )
        if not sent:
            raise NotificationSendError(
                f"apprise could not deliver to channel '{channel.name}' (its log says why)"
            )


def _url_secrets(url: str) -> list[str]:
    """A secret URL and the parts a receiver may echo back (its path, its query)."""
    parts = urlsplit(url)
    found = [url]
    if len(parts.path) > 1:
        found.append(parts.path)
    if parts.query:
        found.append(parts.query)
    return found


def _redact(text: str, secrets: Sequence[str | None]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        if secret:
            text = text.replace(secret, ch.MASK)
    return text


class NotificationDuty:
    """Sending as a duty of the scheduler leader: a thread of its own, so a slow receiver
    never holds up the worker loop. `tick` is called from the loop (cheap): the thread
    runs while this worker leads and sends a pass about every ``interval`` seconds."""

    def __init__(
        self,
        store_of: Callable[[], Store],
        *,
        owner: str,
        log: Callable[[str], None] = lambda message: None,
        interval: float = 1.0,
    ) -> None:
        self.store_of = store_of
        self.owner = owner
        self.log = log
        self.interval = interval
        self._leading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, leading: bool) -> None:
        self._leading = leading
        if leading and self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="legato-notify-sender", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        sender = Sender(self.store_of(), owner=f"{self.owner}-notify")
        try:
            while not self._stop.wait(self.interval):
                if not self._leading:
                    continue
                try:
                    for outcome in sender.send_due():
                        if outcome.state == "dead":
                            self.log(
                                f"notification {outcome.delivery_id} to channel "
                                f"'{outcome.channel}' is dead: {outcome.error}"
                            )
                except LegatoError as exc:  # the store out of reach: try again next time
                    self.log(f"sending notifications failed, retrying: {exc}")
        finally:
            sender.close()
