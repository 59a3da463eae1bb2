"""Logging: get_run_logger in flows and tasks, and print captured with log_prints."""

from prefect import flow, get_run_logger, task


@task(log_prints=True)
def clean(rows: list[str]) -> list[str]:
    kept = [row for row in rows if row.strip()]
    print(f"kept {len(kept)} of {len(rows)} rows")
    return kept


@flow
def tidy(rows: list[str]) -> int:
    logger = get_run_logger()
    logger.info("tidying %d rows", len(rows))
    kept = clean(rows)
    logger.warning("dropped %d empty rows", len(rows) - len(kept))
    return len(kept)


if __name__ == "__main__":
    print(f"kept={tidy(['a', '', 'b', ' '])}")
