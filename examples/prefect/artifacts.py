"""Artifacts: a markdown report, a table, a link, and a progress bar updated as work goes."""

from prefect import flow, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)


@task
def score(batch: list[int]) -> list[dict]:
    return [{"item": n, "score": n * n} for n in batch]


@flow
def report(batches: list[list[int]]) -> str:
    progress_id = create_progress_artifact(progress=0.0, description="scoring batches")
    rows = []
    for done, batch in enumerate(batches, start=1):
        rows.extend(score(batch))
        update_progress_artifact(artifact_id=progress_id, progress=100 * done / len(batches))
    create_table_artifact(key="scores", table=rows, description="score per item")
    best = max(rows, key=lambda row: row["score"])
    create_markdown_artifact(
        key="score-report",
        markdown=f"# Scores\n\nBest item: **{best['item']}** ({best['score']})",
    )
    create_link_artifact(key="raw-data", link="https://example.com/raw.csv", link_text="raw data")
    return f"rows={len(rows)} best={best['item']}"


if __name__ == "__main__":
    print(report([[1, 2], [3, 4], [5]]))
