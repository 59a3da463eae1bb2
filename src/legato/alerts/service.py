"""Applying, listing and deleting alert rules (the CLI and ``legato deploy``'s project file)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from legato.alerts.rules import PREFIX, Alert, compile_alert, parse_alerts
from legato.automations import service as automations
from legato.errors import ConfigurationError, InvalidAutomationError

if TYPE_CHECKING:
    from legato.store.base import Store


def load_yaml(text: str) -> list[Alert]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidAutomationError(f"not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_alerts(data)


def apply(store: Store, alerts: list[Alert]) -> list[tuple[str, bool]]:
    """Create or update each alert's automation (``alert:<name>``); (name, created now)."""
    compiled = [compile_alert(alert) for alert in alerts]  # all checked before any is saved
    applied = automations.apply(store, compiled)
    return [(stored.name.removeprefix(PREFIX), created) for stored, created in applied]


def summaries(store: Store) -> list[dict[str, Any]]:
    """Every alert as JSON-ready data: its events, channels, grouping and open groups."""
    found = []
    for stored in store.list_automations():
        if not stored.name.startswith(PREFIX):
            continue
        spec = json.loads(stored.spec)
        action = spec["actions"][0]
        last = store.list_firings(stored.id, limit=1)
        groups = [s for s in store.list_alert_states(stored.name) if "#rate:" not in s.key]
        found.append(
            {
                "name": stored.name.removeprefix(PREFIX),
                "enabled": stored.enabled,
                "on": spec["trigger"].get("expect", []),
                "channels": action.get("channels", []),
                "group_by": action.get("group_by", []),
                "group_window": action.get("group_window"),
                "rate_limit": action.get("rate_limit", {}),
                "resolve_on": action.get("resolve_on", []),
                "open_groups": len(groups),
                "last_fired": last[0].fired_at.isoformat() if last else None,
            }
        )
    return found


def delete(store: Store, name: str) -> None:
    """Delete the alert ``name`` and the groups it keeps."""
    if store.get_automation(f"{PREFIX}{name}") is None:
        raise ConfigurationError(f"no alert named '{name}'; list them with `legato alert ls`")
    automations.delete(store, f"{PREFIX}{name}")
    store.delete_alert_states(f"{PREFIX}{name}")
