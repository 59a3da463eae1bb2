"""Cache expiration and refresh_cache.

A task whose cached value lapses after a moment runs again once it has lapsed;
a task with refresh_cache=True runs on every call, whatever the cache holds.
"""

import time
from datetime import timedelta

from prefect import flow, task
from prefect.cache_policies import INPUTS

executions = {"quote": 0, "rate": 0}


@task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=0.3))
def quote(symbol: str) -> str:
    executions["quote"] += 1
    return f"{symbol}@{executions['quote']}"


@task(cache_policy=INPUTS, refresh_cache=True)
def fresh_rate(currency: str) -> int:
    executions["rate"] += 1
    return executions["rate"]


@flow
def market() -> dict:
    first = quote("ACME")
    again = quote("ACME")
    time.sleep(0.5)
    lapsed = quote("ACME")
    rates = [fresh_rate("EUR"), fresh_rate("EUR")]
    return {"quotes": [first, again, lapsed], "rates": rates}


if __name__ == "__main__":
    print(f"outcome={market()} executions={executions}")
