"""Run names from templates: flow_run_name and task_run_name, as strings and callables."""

from prefect import flow, task
from prefect.runtime import flow_run, task_run


def name_by_region() -> str:
    return f"sync-{task_run.parameters['region']}"


@task(task_run_name="fetch-{source}-{day}")
def fetch(source: str, day: str) -> str:
    return task_run.name


@task(task_run_name=name_by_region)
def sync(region: str) -> str:
    return task_run.name


def name_by_parameters() -> str:
    return f"{flow_run.flow_name}-for-{flow_run.parameters['team']}"


@flow(flow_run_name="daily-report-{day}")
def daily_report(day: str) -> list[str]:
    return [flow_run.name, fetch("sales", day), sync("emea")]


@flow(flow_run_name=name_by_parameters)
def team_digest(team: str) -> str:
    return flow_run.name


if __name__ == "__main__":
    print(" ".join([*daily_report("2024-05-01"), team_digest("data")]))
