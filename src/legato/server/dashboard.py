"""The dashboard's numbers, one JSON shape for the API (``/api/stats``) and the UI."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from legato.client import Client
from legato.client.views import flow_run_to_dict, isoformat, worker_to_dict
from legato.records import utcnow
from legato.states import StateType

_FAILED = (StateType.FAILED.value, StateType.CRASHED.value)
_FINISHED = (*_FAILED, StateType.COMPLETED.value, StateType.CANCELLED.value)


def dashboard_data(client: Client, *, hours: int = 24, buckets: int = 24) -> dict[str, Any]:
    """Top-level runs of the last ``hours`` in ``buckets`` time slices by state,
    the failure rate of those that finished, the slowest flows, the latest runs and
    the latest failures (whatever their age: the first thing to look at after a
    failure), late and crashed runs, and the workers alive."""
    now = utcnow()
    bucket_seconds = max(hours * 3600 // buckets, 1)
    # Buckets end at the next whole slice, so the newest one holds "now".
    since = now - timedelta(seconds=bucket_seconds * buckets)
    counts = client.run_stats(since=since, bucket_seconds=bucket_seconds)
    per_bucket: list[dict[str, int]] = [{} for _ in range(buckets)]
    totals: dict[str, int] = {}
    for row in counts:
        index = int((row.bucket_start - since).total_seconds() // bucket_seconds)
        if 0 <= index < buckets:
            per_bucket[index][row.state.value] = row.count
        totals[row.state.value] = totals.get(row.state.value, 0) + row.count
    finished = sum(totals.get(s, 0) for s in _FINISHED)
    failed = sum(totals.get(s, 0) for s in _FAILED)
    return {
        "since": isoformat(since),
        "bucket_seconds": bucket_seconds,
        "series": [
            {"start": isoformat(since + timedelta(seconds=i * bucket_seconds)), "counts": by_state}
            for i, by_state in enumerate(per_bucket)
        ],
        "totals": totals,
        "failure_rate": failed / finished if finished else None,
        "slowest_flows": [
            {
                "flow": s.flow_name,
                "runs": s.runs,
                "failed": s.failed,
                "mean_seconds": s.mean_seconds,
                "max_seconds": s.max_seconds,
            }
            for s in client.slowest_flows(since=since, limit=8)
        ],
        "recent_runs": [flow_run_to_dict(r) for r in client.list_runs(limit=10)],
        "recent_failures": [
            flow_run_to_dict(r)
            for r in client.list_runs(states=[StateType.FAILED, StateType.CRASHED], limit=10)
        ],
        "late_runs": [flow_run_to_dict(r) for r in client.late_runs(limit=10)],
        "crashed_runs": [
            flow_run_to_dict(r)
            for r in client.list_runs(states=[StateType.CRASHED], limit=10, created_after=since)
        ],
        "running_runs": [
            flow_run_to_dict(r) for r in client.list_runs(states=[StateType.RUNNING], limit=10)
        ],
        "workers": [worker_to_dict(w) for w in client.workers()],
    }
