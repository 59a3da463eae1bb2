"""Flow retries, exponential_backoff delays, and with_options for a variant of a task."""

from prefect import flow, task
from prefect.tasks import exponential_backoff

runs = {"flow": 0, "fetch": 0}


@task(retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=0.01))
def fetch(endpoint: str) -> str:
    runs["fetch"] += 1
    if runs["fetch"] == 1:
        raise ConnectionError(f"{endpoint} reset the connection")
    return f"{endpoint}: ok"


@flow(retries=1, retry_delay_seconds=0)
def nightly_sync() -> list[str]:
    runs["flow"] += 1
    patient = fetch.with_options(name="fetch-patiently", retries=4)
    first = fetch("/users")
    if runs["flow"] == 1:
        raise RuntimeError("the warehouse was not ready")
    return [first, patient("/orders")]


if __name__ == "__main__":
    print(f"{nightly_sync()} flow_attempts={runs['flow']}")
