"""Futures as arguments and wait_for: tasks ordered by their data and by explicit waits."""

from prefect import flow, task

order = []


@task
def create_table(name: str) -> str:
    order.append(f"create {name}")
    return name


@task
def load_rows(table: str, rows: int) -> int:
    order.append(f"load {table}")
    return rows


@task
def vacuum() -> str:
    order.append("vacuum")
    return "vacuumed"


@flow
def setup_db() -> int:
    table = create_table.submit("events")
    loaded = load_rows.submit(table, 25)
    cleaned = vacuum.submit(wait_for=[loaded])
    cleaned.wait()
    return loaded.result()


if __name__ == "__main__":
    rows = setup_db()
    print(f"rows={rows} order={order}")
