"""Tags: on the decorator, and added around calls with the tags context manager."""

from prefect import flow, tags, task
from prefect.runtime import task_run


@task(tags=["io"])
def read_table(name: str) -> list[str]:
    return sorted(task_run.tags)


@flow
def warehouse() -> dict:
    plain = read_table("orders")
    with tags("nightly", "finance"):
        tagged = read_table("ledger")
    return {"plain": plain, "tagged": tagged}


if __name__ == "__main__":
    with tags("manual"):
        outcome = warehouse()
    print(f"plain={outcome['plain']} tagged={outcome['tagged']}")
