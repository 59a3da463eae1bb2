"""An async flow that runs async tasks together with asyncio.gather."""

import asyncio

from prefect import flow, task


@task
async def fetch_page(page: int) -> list[int]:
    await asyncio.sleep(0.05)
    return [page * 10 + i for i in range(3)]


@flow
async def crawl(pages: int = 3) -> list[int]:
    results = await asyncio.gather(*(fetch_page(p) for p in range(pages)))
    return [item for page in results for item in page]


if __name__ == "__main__":
    items = asyncio.run(crawl(4))
    print(f"items={len(items)} first={items[:3]} last={items[-1]}")
