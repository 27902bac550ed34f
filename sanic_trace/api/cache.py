"""Stage caches in Redis: response bodies stored and replayed byte for byte.

Large bodies are written piece by piece (APPEND to a temporary key, RENAME when complete)
and read back in slices (GETRANGE), so neither writing nor replaying a cached response
holds the whole body in the server's memory. A body that fails midway is never published.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
import ujson

# Replay slices: big enough to keep round trips few, small enough to keep memory flat.
READ_SLICE_BYTES = 1 << 20


def cache_key(prefix: str, stage: str, material: Any) -> tuple[str, str]:
    """(Redis key, public cache_key) for a stage and its normalised request."""
    canonical = ujson.dumps(material, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(f"{stage}\n{canonical}".encode()).hexdigest()[:32]
    return f"{prefix}:cache:{stage}:{digest}", digest


async def cached_size(client: aioredis.Redis, key: str) -> int:
    return int(await client.strlen(key))


async def read_cached(client: aioredis.Redis, key: str, size: int) -> AsyncIterator[bytes]:
    for start in range(0, size, READ_SLICE_BYTES):
        piece = await client.getrange(key, start, min(size, start + READ_SLICE_BYTES) - 1)
        if not piece:
            return
        yield piece


class CacheWriter:
    """Collects a body in Redis as it is sent; publish() makes it visible under its key."""

    def __init__(self, client: aioredis.Redis, key: str, ttl_seconds: int) -> None:
        self.client = client
        self.key = key
        self.ttl = ttl_seconds
        self.temp_key = f"{key}:partial:{uuid.uuid4().hex}"
        self.written = 0

    async def append(self, piece: bytes) -> None:
        if not piece:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.append(self.temp_key, piece)
            # A writer that dies midway leaves nothing behind for long.
            pipe.expire(self.temp_key, 600)
            await pipe.execute()
        self.written += len(piece)

    async def publish(self) -> None:
        if self.written == 0:
            return
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.rename(self.temp_key, self.key)
            pipe.expire(self.key, self.ttl)
            await pipe.execute()

    async def discard(self) -> None:
        await self.client.delete(self.temp_key)
