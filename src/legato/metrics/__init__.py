"""Prometheus metrics (the ``metrics`` extra): `legato server`'s ``/metrics`` and
`legato worker --metrics-port`.

Run metrics are read from the store (aggregates folded from its events index at scrape),
so runs that crashed or never started count, whichever process changed them.
Nothing here is imported by ``import legato``.
"""

from __future__ import annotations

__all__ = ["require_prometheus_client"]


def require_prometheus_client() -> None:
    """Raise one clear error when the ``prometheus-client`` package is missing."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        from legato.errors import MissingExtraError

        raise MissingExtraError("metrics", "prometheus-client", "Prometheus metrics") from None
