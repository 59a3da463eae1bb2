"""States: return_state=True, and tasks and flows that return a state themselves."""

from prefect import flow, task
from prefect.states import Completed, Failed


@task
def validate(record: dict):
    if "id" not in record:
        return Failed(message=f"record {record} has no id")
    return Completed(message="valid", data=record["id"])


@task
def explode() -> None:
    raise RuntimeError("boom")


@flow
def check_records(records: list[dict]):
    states = [validate(r, return_state=True) for r in records]
    failed = [s for s in states if s.is_failed()]
    boom = explode(return_state=True)
    print(f"explode failed={boom.is_failed()} type={boom.type.value}")
    if failed:
        return Failed(message=f"{len(failed)} of {len(states)} records are invalid")
    return Completed(message="all records valid", data=[s.result() for s in states])


if __name__ == "__main__":
    good = check_records([{"id": 1}, {"id": 2}], return_state=True)
    bad = check_records([{"id": 1}, {"name": "x"}], return_state=True)
    print(f"good={good.is_completed()} result={good.result()}")
    print(f"bad={bad.is_failed()} message={bad.message!r}")
