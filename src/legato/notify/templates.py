"""Message templates: sandboxed Jinja2, with a default for flow-run events.

A template is one text: its first line is the subject, the rest the body. It
sees ``event`` (name, occurred, resource, payload), ``flow``, ``deployment``,
``state``, ``message``, ``duration``, ``attempt``, ``run_id``, ``run_url`` (a
link to the run page when ``LEGATO_UI_URL`` is set) and ``error`` (the last
error lines). The sandbox refuses attribute tricks that reach Python internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from legato._event_records import RESOURCE_ID, RESOURCE_NAME, Event
from legato.errors import ConfigurationError
from legato.settings import ui_url

DEFAULT_TEMPLATE = """\
{{ flow or "flow" }} run {{ run_name or run_id or "" }} is {{ state or event.event }}
Flow: {{ flow or "-" }}
{% if deployment %}Deployment: {{ deployment }}
{% endif %}State: {{ state or event.event }}{% if message %} ({{ message }}){% endif %}
{% if attempt %}Attempt: {{ attempt }}
{% endif %}{% if duration %}Duration: {{ duration }}
{% endif %}{% if run_url %}Run: {{ run_url }}
{% endif %}{% if error %}Error:
{{ error }}
{% endif %}"""

_ERROR_LINES = 10


def _related_name(event: Event, role: str) -> str | None:
    for resource in event.related:
        if resource.get("legato.resource.role") == role:
            return resource.get(RESOURCE_NAME) or resource[RESOURCE_ID].rpartition(".")[2]
    return None


def _duration(seconds: Any) -> str | None:
    if not isinstance(seconds, int | float) or seconds < 0:
        return None
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def event_context(event: Event) -> dict[str, Any]:
    """The names a template sees for ``event``."""
    payload: Mapping[str, Any] = event.payload
    resource_id = event.resource_id
    run_id = (
        resource_id.removeprefix("legato.flow-run.")
        if resource_id.startswith("legato.flow-run.")
        else payload.get("flow_run_id")
    )
    base = ui_url()
    error_lines = []
    if payload.get("error_type") or payload.get("error_message"):
        head = ": ".join(
            str(p) for p in (payload.get("error_type"), payload.get("error_message")) if p
        )
        error_lines = head.splitlines()
    traceback = payload.get("traceback")
    if isinstance(traceback, str):
        error_lines += traceback.splitlines()
    state = event.resource.get("legato.state-name") or event.event.rpartition(".")[2]
    started, ended = payload.get("start_time"), payload.get("end_time")
    duration = payload.get("duration")
    if duration is None and isinstance(started, str) and isinstance(ended, str):
        try:
            duration = (
                datetime.fromisoformat(ended) - datetime.fromisoformat(started)
            ).total_seconds()
        except ValueError:
            duration = None
    return {
        "event": {
            "id": event.id,
            "name": event.event,
            "event": event.event,
            "occurred": event.occurred.isoformat(),
            "resource": dict(event.resource),
            "payload": dict(payload),
        },
        "flow": _related_name(event, "flow") or payload.get("flow"),
        "deployment": _related_name(event, "deployment") or payload.get("deployment"),
        "state": state,
        "message": payload.get("message"),
        "attempt": payload.get("attempt"),
        "duration": _duration(duration),
        "run_id": run_id,
        "run_name": event.resource.get(RESOURCE_NAME) if run_id else None,
        "run_url": f"{base}/runs/{run_id}" if base and run_id else None,
        "error": "\n".join(error_lines[-_ERROR_LINES:]) or None,
    }


def render_message(event: Event, template: str | None = None) -> tuple[str, str]:
    """``(subject, body)`` for ``event`` from ``template`` (sandboxed Jinja2; None: the
    default for flow-run events). Raises `ConfigurationError` for a template that does not
    parse or fails to render."""
    try:
        from jinja2 import TemplateError
        from jinja2.sandbox import SandboxedEnvironment
    except ImportError:
        from legato.errors import MissingExtraError

        raise MissingExtraError("notify", "jinja2", "a notification message") from None

    # Names an event lacks render empty: one template serves many kinds of events.
    env = SandboxedEnvironment(autoescape=False)
    try:
        text = env.from_string(template or DEFAULT_TEMPLATE).render(event_context(event))
    except TemplateError as exc:
        raise ConfigurationError(
            f"the notification template does not render: {exc}; fix the template"
        ) from None
    subject, _, body = text.strip().partition("\n")
    return " ".join(subject.split())[:250], body.strip()
