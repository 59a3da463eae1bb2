"""ETL over local CSV files: fan-out per file, a flaky step with retries, a join.

Run it:
    legato run examples/etl.py:etl
    legato run examples/etl.py:etl -p min_amount=50 -p out_dir=/tmp/report --json

It writes revenue_by_customer.json to the current folder (or to ``out_dir``),
and says where at the start. It makes its own input files (three CSVs of orders
in different currencies) under LEGATO_HOME/examples/etl/input the first time,
so it runs anywhere.
The exchange-rate lookup fails on its first attempt for each currency, as a
rate-limited API would; `retries` absorbs that and `legato show RUN` shows
the two attempts.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from legato import flow, get_run_context, get_run_logger, task
from legato.settings import legato_home

RATES_TO_EUR = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17}
OUTPUT_NAME = "revenue_by_customer.json"


def workdir() -> Path:
    return legato_home() / "examples" / "etl"


@task
def make_inputs(count_per_file: int) -> list[str]:
    """Write sample order files once; returns their paths."""
    folder = workdir() / "input"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for currency in RATES_TO_EUR:
        path = folder / f"orders_{currency.lower()}.csv"
        if not path.exists():
            with path.open("w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["order_id", "customer", "amount", "currency"])
                for i in range(count_per_file):
                    writer.writerow([f"{currency}-{i}", f"c{i % 7}", 10 + (i * 37) % 190, currency])
        paths.append(str(path))
    return paths


@task
def extract(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    get_run_logger().info("read %d rows from %s", len(rows), Path(path).name)
    return rows


@task(retries=3, retry_delay_seconds=[0.2, 0.5, 1.0])
def exchange_rate(currency: str) -> float:
    """Pretend to call a rate API that rejects the first request of each call."""
    # The idempotency key is the same on every attempt of this call, and across
    # resumes of the run: a real client would send it as a request header.
    key = get_run_context().idempotency_key
    marker = workdir() / "attempts" / (key.replace("/", "_") + ".seen")
    marker.parent.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        marker.touch()
        raise ConnectionError(f"rate API said 429 Too Many Requests for {currency}")
    return RATES_TO_EUR[currency]


@task
def transform(
    rows: list[dict[str, str]], rate: float, min_amount: float
) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for row in rows:
        amount_eur = round(float(row["amount"]) * rate, 2)
        if amount_eur >= min_amount:
            out.append(
                {"order_id": row["order_id"], "customer": row["customer"], "eur": amount_eur}
            )
    return out


@task
def load(batches: list[list[dict[str, object]]], out_dir: str) -> dict[str, object]:
    totals: dict[str, float] = {}
    for batch in batches:
        for row in batch:
            customer = str(row["customer"])
            totals[customer] = round(totals.get(customer, 0.0) + float(row["eur"]), 2)  # type: ignore[arg-type]
    out = Path(out_dir) / OUTPUT_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(sorted(totals.items())), indent=2))
    return {
        "customers": len(totals),
        "revenue_eur": round(sum(totals.values()), 2),
        "file": str(out),
    }


@flow(log_prints=True)
def etl(min_amount: float = 20.0, rows_per_file: int = 50, out_dir: str = ".") -> dict[str, object]:
    """Revenue per customer in EUR from orders in three currencies, written to
    ``out_dir`` (the current folder by default)."""
    folder = Path(out_dir).resolve()
    print(f"writing {folder / OUTPUT_NAME}")
    paths = make_inputs(rows_per_file)
    rows = extract.map(paths)  # one task run per file, in parallel
    currencies = [Path(p).stem.split("_")[1].upper() for p in paths]
    rates = exchange_rate.map(currencies)
    cleaned = transform.map(rows, rates, min_amount=min_amount)
    summary = load([c.result() for c in cleaned], str(folder))
    print(f"revenue: {summary['revenue_eur']} EUR over {summary['customers']} customers")
    return summary


if __name__ == "__main__":
    os.environ.setdefault("LEGATO_LOG_TO_CONSOLE", "1")
    print(etl())
