"""Workers: processes that claim queued runs and execute each in a subprocess of its own.

`Worker` is the loop behind `legato worker` and `Flow.serve`; every worker also
runs the scheduler (`legato.worker.scheduler`), of which only the elected
leader acts.
"""

from legato.worker.worker import Worker

__all__ = ["Worker"]
