"""Concurrent tasks on a ThreadPoolTaskRunner: submit, map, wait, as_completed."""

import time

from prefect import flow, task, unmapped
from prefect.futures import as_completed, wait
from prefect.task_runners import ThreadPoolTaskRunner


@task
def resize(image: str, width: int) -> str:
    time.sleep(0.05)
    return f"{image}@{width}px"


@task
def checksum(name: str) -> int:
    return sum(name.encode())


@flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
def thumbnails(images: list[str]) -> dict:
    mapped = resize.map(images, width=unmapped(128))
    done, not_done = wait(mapped)
    submitted = [checksum.submit(name) for name in images]
    finished = sorted(future.result() for future in as_completed(submitted))
    return {
        "thumbnails": mapped.result(),
        "all_done": len(done) == len(images) and not not_done,
        "checksums": finished,
    }


if __name__ == "__main__":
    print(thumbnails(["a.png", "b.png", "c.png"]))
