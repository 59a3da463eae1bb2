"""prefect.runtime: who am I? The flow run and task run, read from inside them."""

import json

from prefect import flow, task
from prefect.runtime import flow_run, task_run


@task
def describe_task(x: int) -> dict:
    return {
        "task_name": task_run.task_name,
        "task_parameters": task_run.parameters,
        "task_run_count": task_run.run_count,
        "flow_in_task": flow_run.flow_name,
    }


@flow
def introspect(x: int = 7) -> dict:
    info = describe_task(x)
    info.update(
        flow_name=flow_run.flow_name,
        flow_parameters=flow_run.parameters,
        run_id=flow_run.id,
        run_name=flow_run.name,
    )
    return info


if __name__ == "__main__":
    print(json.dumps(introspect(3), sort_keys=True))
    print(f"outside a run: id={flow_run.id}")
