"""prefect.context: the run context, read inside a flow and a task."""

from prefect import flow, task
from prefect.context import get_run_context


@task
def where_am_i() -> str:
    ctx = get_run_context()
    return ctx.task_run.name


@flow
def locate() -> dict:
    ctx = get_run_context()
    return {"flow": ctx.flow.name, "run_name": ctx.flow_run.name, "task": where_am_i()}


if __name__ == "__main__":
    print(locate())
