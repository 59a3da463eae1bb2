"""Flows the testing-kit tests run (in process, and as ``legato run`` targets in a
subprocess): not a test module. Every successful ``charge`` records a ``charge``
side effect with `legato.testing.effects`."""

from __future__ import annotations

from legato import flow, task
from legato.testing import effects


@task
def charge(n: int) -> int:
    effects.record("charge")  # not guarded: a re-run charges again
    return n * 10


@task
def charge_once(n: int) -> int:
    effects.once("charge")  # guarded by the call's idempotency key
    return n * 10


@task(retries=2)
def fetch(n: int) -> int:
    return n


@flow
def pay(n: int = 3) -> int:
    return sum(charge(i) for i in range(n))


@flow
def pay_once(n: int = 3) -> int:
    return sum(charge_once(i) for i in range(n))


@flow
def fetch_all(n: int = 3) -> list[int]:
    return [fetch(i) for i in range(n)]


@flow
def nested(n: int = 2) -> int:
    return pay(n) + pay_once(n)


@task(retries=1)
async def fetch_async(n: int) -> int:
    return n


@flow
async def fetch_all_async(n: int = 2) -> list[int]:
    return [await fetch_async(i) for i in range(n)]
