"""Traces off vs on: per-task overhead of a sequential flow (SQLite, this process).

Run:  python benchmarks/bench_tracing.py            (2,000 tasks x 5 repeats)
      python benchmarks/bench_tracing.py --quick    (a smoke check)

"off" is the default (no LEGATO_OTEL, no OTEL_EXPORTER_OTLP_ENDPOINT): the engine
then pays nothing for traces, so it must match bench_core's sequential figure.
"on" sends every span to an SDK provider whose exporter drops them (what the
SDK itself costs, without any network). Off and on alternate, repeat by repeat,
so that both see the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _fresh_home() -> None:
    os.environ["LEGATO_HOME"] = tempfile.mkdtemp(prefix="legato-bench-")
    os.environ["LEGATO_LOG_TO_CONSOLE"] = "0"
    from legato.store import reset_default_store

    reset_default_store()


def _inc(x: int) -> int:
    return x + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, repeats = (300, 3) if args.quick else (2000, 5)

    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    from legato import flow, task, tracing

    class Drop(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Drop()))
    inc = task(_inc)

    @flow
    def sequential(n: int) -> int:
        total = 0
        for i in range(n):
            total += inc(i)
        return total

    def plain(n: int) -> int:
        return sum(_inc(i) for i in range(n))

    results: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(repeats):
        for mode in ("off", "on"):
            tracing.configure(provider if mode == "on" else None, enabled=mode == "on")
            _fresh_home()
            t0 = time.perf_counter()
            plain(n)
            t_plain = time.perf_counter() - t0
            t0 = time.perf_counter()
            sequential(n)
            t_flow = time.perf_counter() - t0
            results[mode].append((t_flow - t_plain) / n * 1e6)
    off = statistics.median(results["off"])
    on = statistics.median(results["on"])
    print("| traces | sequential, per task |")
    print("|---|---|")
    print(f"| off (default) | {off:.1f} µs |")
    print(f"| on (SDK, spans dropped) | {on:.1f} µs |")
    if not args.quick:
        out = HERE / "results" / "tracing.json"
        out.write_text(json.dumps({"n": n, "off_us": off, "on_us": on, **results}, indent=2))
        print(f"\nsaved {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
