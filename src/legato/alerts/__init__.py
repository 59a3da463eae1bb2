"""Alert rules: sugar over automations (see docs/architecture.md, "Alerts").

An alert (``alerts:`` in ``legato.yaml``, ``legato alert apply``) compiles into
the automation ``alert:<name>``: an event trigger on the mapped event names and
one ``send-notification`` action carrying the alert's grouping, rate limits and
resolve events. That action (`legato.alerts.sending`) keeps its groups in the
store (`alert_states`), so grouping survives an evaluator restart.
"""

from __future__ import annotations
