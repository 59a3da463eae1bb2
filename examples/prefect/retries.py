"""Retries: a task retried with delays, and a retry condition that gives up early.

``retry_delay_seconds`` takes one number or a list (one delay per retry);
``retry_condition_fn(task, task_run, state)`` decides, from the failed state,
whether the next attempt happens.
"""

from prefect import flow, task

attempts = {"flaky": 0, "picky": 0}


class TemporaryOutage(Exception):
    pass


class BadRequest(Exception):
    pass


@task(retries=3, retry_delay_seconds=[0.05, 0.1, 0.1])
def flaky_download(url: str) -> str:
    attempts["flaky"] += 1
    if attempts["flaky"] < 3:
        raise TemporaryOutage(f"{url} is not answering")
    return f"contents of {url}"


def retry_unless_bad_request(task, task_run, state) -> bool:
    try:
        state.result()
    except BadRequest:
        return False
    except Exception:
        return True
    return True


@task(retries=5, retry_delay_seconds=0, retry_condition_fn=retry_unless_bad_request)
def picky_upload(payload: str) -> str:
    attempts["picky"] += 1
    raise BadRequest(f"the server refused {payload!r}")


@flow
def sync_files() -> str:
    text = flaky_download("https://example.com/data.csv")
    upload = picky_upload(text, return_state=True)
    return f"download={text!r} upload_failed={upload.is_failed()}"


if __name__ == "__main__":
    outcome = sync_files()
    print(f"{outcome} flaky_attempts={attempts['flaky']} picky_attempts={attempts['picky']}")
