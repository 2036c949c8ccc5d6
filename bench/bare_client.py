"""The practical ceiling for Python here: a bare asyncio client (aiohttp).

``python bench/bare_client.py BASE_URL CAT_IDS CONCURRENCY OUTPUT`` fetches
page 1 of every category, then every other page, at most CONCURRENCY calls in
flight; parses each answer's JSON and writes each item with the same context
fields as the crawler, one JSON object per line. No retries, no validation, no
dedupe, no stats: nothing but fetch, parse and write.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
from datetime import UTC, datetime
from typing import IO, Any

import aiohttp

PATH = "/1688/category/items/v2"


async def crawl(base_url: str, cat_ids: list[int], limit: int, out: IO[str]) -> int:
    token = os.environ["TMAPI_TOKEN"]
    connector = aiohttp.TCPConnector(limit=limit)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def page(cat_id: int, number: int) -> dict[str, Any]:
            params: dict[str, str | int] = {
                "cat_id": cat_id,
                "language": "en",
                "page": number,
                "page_size": 20,
                "sort": "default",
                "apiToken": token,
            }
            async with session.get(base_url + PATH, params=params) as response:
                body = await response.read()
            data = json.loads(body)["data"]
            context = {
                "cat_id": cat_id,
                "language": "en",
                "sort": "default",
                "filters": {},
                "page": number,
                "crawled_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            for position, item in enumerate(data["items"], 1):
                line = {**item, **context, "position": position}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
            return data

        firsts = await asyncio.gather(*(page(c, 1) for c in cat_ids))
        rest = [
            page(cat_id, number)
            for cat_id, first in zip(cat_ids, firsts, strict=True)
            for number in range(
                2, math.ceil(first["total_count"] / first["page_size"]) + 1
            )
        ]
        await asyncio.gather(*rest)
        return len(firsts) + len(rest)


def main() -> None:
    base_url, cats, limit, output = sys.argv[1:5]
    cat_ids = [int(c) for c in cats.split(",")]
    with open(output, "w", encoding="utf-8") as out:
        asyncio.run(crawl(base_url.rstrip("/"), cat_ids, int(limit), out))


if __name__ == "__main__":
    main()
