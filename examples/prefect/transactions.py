"""Transactions: a written file is removed again when a later step in the block fails."""

import os
from pathlib import Path

from prefect import flow, task
from prefect.transactions import transaction

OUTPUT = Path("transaction-output.txt")


@task
def write_report(text: str) -> None:
    OUTPUT.write_text(text)


@write_report.on_rollback
def remove_report(txn) -> None:
    os.unlink(OUTPUT)
    print("rolled back: report removed")


@task
def check_report() -> None:
    lines = OUTPUT.read_text().splitlines()
    if len(lines) < 2:
        raise ValueError(f"the report has {len(lines)} line(s), it needs 2")


@flow
def publish(text: str) -> None:
    with transaction():
        write_report(text)
        check_report()


if __name__ == "__main__":
    good = publish("line one\nline two\n", return_state=True)
    print(f"good completed={good.is_completed()} file kept={OUTPUT.exists()}")
    bad = publish("only one line\n", return_state=True)
    print(f"bad failed={bad.is_failed()} file kept={OUTPUT.exists()}")
