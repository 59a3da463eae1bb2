"""legato.testing: the testing kit (see the README, "Testing your flows").

`run_flow` runs a flow and returns a `RunResult`; `crash_at`, `fail_task` and
`store_outage` inject faults; `crash_matrix` crashes a flow at every task
boundary and resumes it; `effects` records side effects. The pytest plugin
(`legato.testing.plugin`, loaded automatically) provides the ``legato_store``
fixture. Importing this package does not import pytest.
"""

from legato.errors import CrashMatrixFailed, SimulatedCrash
from legato.testing import effects
from legato.testing.clock import Clock, virtual_clock
from legato.testing.crash_matrix import (
    Boundary,
    CrashMatrixReport,
    Duplicate,
    Mismatch,
    crash_matrix,
)
from legato.testing.faults import crash_at, fail_task, store_outage
from legato.testing.replay import ReplayReport, replay
from legato.testing.runs import RunResult, resume, run_flow

__all__ = [
    "Boundary",
    "Clock",
    "CrashMatrixFailed",
    "CrashMatrixReport",
    "Duplicate",
    "Mismatch",
    "ReplayReport",
    "RunResult",
    "SimulatedCrash",
    "crash_at",
    "crash_matrix",
    "effects",
    "fail_task",
    "replay",
    "resume",
    "run_flow",
    "store_outage",
    "virtual_clock",
]
