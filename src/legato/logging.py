"""Run loggers, under Prefect's module name: ``from legato.logging import get_run_logger``."""

from __future__ import annotations

from legato.engine.logs import RunLogger, disable_run_logger, get_run_logger

__all__ = ["RunLogger", "disable_run_logger", "get_run_logger"]
