"""State hooks: on_completion and on_failure, as decorators and as keyword lists."""

from prefect import flow, task

events = []


@task
def load(rows: int) -> int:
    if rows < 0:
        raise ValueError("a negative row count")
    return rows


@load.on_completion
def loaded(task, task_run, state) -> None:
    events.append(f"task {task.name} completed")


@load.on_failure
def load_failed(task, task_run, state) -> None:
    events.append(f"task {task.name} failed")


def notify_failure(flow, flow_run, state) -> None:
    events.append(f"flow {flow.name} failed: {state.message}")


@flow(on_failure=[notify_failure])
def nightly(rows: int) -> int:
    return load(rows)


@nightly.on_completion
def nightly_done(flow, flow_run, state) -> None:
    events.append(f"flow {flow.name} completed")


if __name__ == "__main__":
    nightly(10)
    state = nightly(-1, return_state=True)
    print(f"failed={state.is_failed()}")
    for event in events:
        print(event)
