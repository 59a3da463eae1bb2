"""The smallest Prefect program: a flow that calls two tasks.

Run it unchanged on legato:
    python -m legato.prefect examples/prefect/hello_flow.py
"""

from prefect import flow, task


@task
def fetch_numbers(count: int) -> list[int]:
    return list(range(1, count + 1))


@task
def add_up(numbers: list[int]) -> int:
    return sum(numbers)


@flow(log_prints=True)
def hello(count: int = 4) -> int:
    numbers = fetch_numbers(count)
    total = add_up(numbers)
    print(f"the sum of 1..{count} is {total}")
    return total


if __name__ == "__main__":
    print(f"total={hello(5)}")
