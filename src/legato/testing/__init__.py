"""legato.testing: the testing kit (see the README, "Testing your flows").

`run_flow` runs a flow and returns a `RunResult`; `crash_at`, `fail_task` and
`store_outage` inject faults; `crash_matrix` crashes a flow at every task
boundary and resumes it; `effects` records side effects. The pytest plugin
(`legato.testing.plugin`, loaded automatically) provides the ``legato_store``
fixture. Importing this package does not import pytest.
"""

from legato.errors import CrashMatrixFailed, SimulatedCrash  # noqa: F401
from legato.testing import effects  # noqa: F401
from legato.testing.clock import Clock as Clock
from legato.testing.clock import virtual_clock as virtual_clock
from legato.testing.crash_matrix import (  # noqa: F401
    Boundary,
    CrashMatrixReport,
    Duplicate,
    Mismatch,
    crash_matrix,
)
from legato.testing.faults import crash_at, fail_task, store_outage  # noqa: F401
from legato.testing.replay import ReplayReport as ReplayReport
from legato.testing.replay import replay as replay
from legato.testing.runs import RunResult, resume, run_flow  # noqa: F401
