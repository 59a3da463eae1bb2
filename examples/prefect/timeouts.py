"""Timeouts: a task that runs too long fails with a timeout, as does a slow flow."""

import time

from prefect import flow, task


@task(timeout_seconds=0.2)
def slow_query() -> str:
    time.sleep(5)
    return "never"


@task
def quick_query() -> str:
    return "rows"


@flow
def dashboard() -> dict:
    slow = slow_query(return_state=True)
    return {"slow_failed": slow.is_failed(), "quick": quick_query()}


@flow(timeout_seconds=0.3)
def stuck() -> None:
    time.sleep(5)


if __name__ == "__main__":
    print(dashboard())
    state = stuck(return_state=True)
    print(f"stuck failed={state.is_failed()}")
