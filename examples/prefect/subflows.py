"""Subflows: a flow that calls other flows, each recorded as its own run."""

from prefect import flow, task


@task
def extract(source: str) -> list[int]:
    return [len(source), len(source) * 2]


@flow
def ingest(source: str) -> list[int]:
    return extract(source)


@flow
def summarize(values: list[int]) -> int:
    return sum(values)


@flow
def pipeline(sources: list[str]) -> int:
    values = []
    for source in sources:
        values.extend(ingest(source))
    return summarize(values)


if __name__ == "__main__":
    print(f"total={pipeline(['alpha', 'beta'])}")
