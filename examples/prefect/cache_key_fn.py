"""The older form of caching: cache_key_fn with task_input_hash, and a custom key."""

from datetime import timedelta

from prefect import flow, task
from prefect.tasks import task_input_hash

calls = []


@task(cache_key_fn=task_input_hash, cache_expiration=timedelta(days=1))
def lookup(city: str) -> str:
    calls.append(city)
    return city.upper()


def by_region(context, parameters) -> str:
    return parameters["code"].split("-")[0]


@task(cache_key_fn=by_region)
def region_name(code: str) -> str:
    calls.append(code)
    return f"region of {code}"


@flow
def geography() -> list[str]:
    return [lookup("paris"), lookup("paris"), region_name("eu-west"), region_name("eu-north")]


if __name__ == "__main__":
    print(f"names={geography()} calls={calls}")
