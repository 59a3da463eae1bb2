"""Cache policies: INPUTS, TASK_SOURCE, and a policy with an input left out.

Each task counts its real executions; a cache hit does not run the body.
Keys are kept in the store, so a second run of this script finds them too.
"""

from prefect import flow, task
from prefect.cache_policies import INPUTS, TASK_SOURCE

executions = {"square": 0, "greet": 0, "constant": 0}


@task(cache_policy=INPUTS)
def square(x: int) -> int:
    executions["square"] += 1
    return x * x


@task(cache_policy=INPUTS - "verbose")
def greet(name: str, verbose: bool = False) -> str:
    executions["greet"] += 1
    return f"hello {name}"


@task(cache_policy=TASK_SOURCE)
def constant() -> int:
    executions["constant"] += 1
    return 42


@flow
def cached_work() -> list:
    squares = [square(2), square(2), square(3)]
    greetings = [greet("ada"), greet("ada", verbose=True), greet("bob")]
    return [squares, greetings, [constant(), constant()]]


if __name__ == "__main__":
    result = cached_work()
    counts = " ".join(f"{name}={count}" for name, count in executions.items())
    print(f"result={result} executions: {counts}")
