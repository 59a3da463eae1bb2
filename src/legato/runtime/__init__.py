"""The current run's attributes, read where they are used, as in Prefect's ``prefect.runtime``.

``from legato.runtime import flow_run, task_run`` then ``flow_run.id``,
``flow_run.parameters``, ``task_run.name``... Outside a run every attribute has
an empty value (None, ``[]``, ``{}`` or 0) instead of raising.
"""

from __future__ import annotations

from legato.runtime import flow_run, task_run

__all__ = ["flow_run", "task_run"]
