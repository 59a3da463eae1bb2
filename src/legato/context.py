"""The current run's context, under Prefect's module name: ``legato.context.get_run_context``."""

from __future__ import annotations

from legato.engine.context import RunContext, get_run_context
from legato.tags import tags

__all__ = ["RunContext", "get_run_context", "tags"]
