"""Pausing: a flow that waits for a human, who never comes, so the pause times out.

On legato a pause frees the process at once (the run is recorded as paused and
``review(return_state=True)`` returns a Paused state); the run fails once its
timeout has passed without a resume, which ``legato show RUN`` then reports.
"""

from prefect import flow, pause_flow_run, task


@task
def prepare() -> str:
    return "draft ready"


@flow
def review() -> str:
    prepare()
    pause_flow_run(timeout=1)
    return "approved"


if __name__ == "__main__":
    state = review(return_state=True)
    print(f"state={state.type.value}")
