"""The streaming load of the /health check: N clients following job streams, in a process of their own.

Their own process, so that the bytes they move do not hold the GIL of the bench process where
/health latencies are timed. Each client follows its job's live stream to the end and starts
again, until told to stop or its time is up. They accept gzip as the dashboard's browsers do,
or ask for identity (to tell the cost of compression from the rest).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx


async def _client(base_url: str, path: str, encoding: str, totals: dict[str, int]) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30.0, read=120.0)) as client:
        while True:  # ended by cancellation
            try:
                async with client.stream("GET", path, headers={"Accept-Encoding": encoding}) as response:
                    async for piece in response.aiter_raw():
                        totals["bytes"] += len(piece)
                totals["streams"] += 1
            except httpx.HTTPError:
                totals["errors"] += 1
                await asyncio.sleep(0.2)


def stream_clients(
    base_url: str, paths: list[str], encoding: str, stop: Any, max_seconds: float, report: Any
) -> None:
    """Spawn target: one client per path until `stop` (a multiprocessing Event) is set; totals to `report`."""
    totals = {"bytes": 0, "streams": 0, "errors": 0}
    deadline = time.monotonic() + max_seconds

    async def main() -> None:
        tasks = [asyncio.create_task(_client(base_url, path, encoding, totals)) for path in paths]
        # A live stream may be quiet for seconds (keep-alives): watch the stop flag here, not in the clients.
        while not stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        asyncio.run(main())
    finally:
        report.send(totals)
        report.close()
