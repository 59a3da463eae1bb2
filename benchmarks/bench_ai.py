"""What making a model call durable costs: `ai.call` in a flow vs asking the model directly.

Run:  python benchmarks/bench_ai.py            (1,000 calls x 5 repeats, SQLite)
      python benchmarks/bench_ai.py --quick    (a smoke check)

The model is `legato.ai.testing.FakeModel` (answers at once), so the figures are
legato's own cost per call: a task run, one fenced write of the answered try
(request, answer, usage, cost), the step's record and the budget check. A real
provider answers in hundreds of milliseconds; this is what is added to that.
"Direct" calls the same fake model's `request` with the same request. The two
alternate, repeat by repeat, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, repeats = (200, 2) if args.quick else (1000, 5)
    os.environ["LEGATO_HOME"] = tempfile.mkdtemp(prefix="legato-bench-ai-")
    os.environ["LEGATO_LOG_TO_CONSOLE"] = "0"

    from legato import ai, flow
    from legato.ai.convert import to_messages
    from legato.ai.testing import FakeModel
    from legato.ai.types import ModelRequest

    ai.set_prices({"fake-model": {"input": 0.15, "output": 0.60}})
    fake = FakeModel.returning(lambda request: "a short answer")

    @flow
    def many(count: int) -> int:
        for i in range(count):
            ai.call(fake, f"question {i}", temperature=0)
        return count

    def durable() -> float:
        start = time.perf_counter()
        many(n)
        return (time.perf_counter() - start) / n * 1e6

    def direct() -> float:
        start = time.perf_counter()
        for i in range(n):
            fake.request(ModelRequest(to_messages(f"question {i}"), params={"temperature": 0}))
        return (time.perf_counter() - start) / n * 1e6

    durable()  # warm up: the store's schema, imports
    durable_us: list[float] = []
    direct_us: list[float] = []
    for _ in range(repeats):
        durable_us.append(durable())
        direct_us.append(direct())
    result = {
        "calls": n,
        "repeats": repeats,
        "durable_us_per_call": round(statistics.median(durable_us), 1),
        "direct_us_per_call": round(statistics.median(direct_us), 1),
    }
    result["overhead_us_per_call"] = round(
        result["durable_us_per_call"] - result["direct_us_per_call"], 1
    )
    print(json.dumps(result, indent=2))
    if not args.quick:
        (HERE / "results" / "ai.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
