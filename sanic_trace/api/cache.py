"""Stage caches in Redis: response bodies stored and replayed byte for byte.

Large bodies are written piece by piece (APPEND to a temporary key, RENAME when complete)
and read back in slices (GETRANGE), so neither writing nor replaying a cached response
holds the whole body in the server's memory. A body that fails midway is never published.

The cache is an optimisation, never a dependency: when Redis cannot be reached the stages
answer from the database (`X-Cache: bypass`), and a write that fails while a body streams
stops caching that body without disturbing the response (the same choice as the rate
limiter's: a Redis outage must not become an outage of the inline path).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
import ujson

from jobs.errors import REDIS_DOWN

log = logging.getLogger("sanic_trace.cache")

# Replay slices: big enough to keep round trips few, small enough to keep memory flat.
READ_SLICE_BYTES = 1 << 20


class CacheVanished(Exception):
    """A cached body expired or changed while it was being replayed (the response is then cut off)."""


def cache_key(prefix: str, stage: str, material: Any) -> tuple[str, str]:
    """(Redis key, public cache_key) for a stage and its normalised request."""
    canonical = ujson.dumps(material, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(f"{stage}\n{canonical}".encode()).hexdigest()[:32]
    return stage_key(prefix, stage, digest), digest


def stage_key(prefix: str, stage: str, digest: str) -> str:
    """The Redis key of a stage's cached body with this public cache_key."""
    return f"{prefix}:cache:{stage}:{digest}"


async def cached_size(client: aioredis.Redis, key: str) -> int | None:
    """Length of the cached body (0: nothing cached); None when Redis cannot be reached."""
    try:
        return int(await client.strlen(key))
    except REDIS_DOWN as exc:
        log.warning("cache_unavailable op=lookup key=%s error=%s", key, exc)
        return None


async def store(client: aioredis.Redis, key: str, body: bytes, ttl_seconds: int) -> bool:
    """Cache a whole (small) body; False when Redis cannot be reached."""
    try:
        await client.set(key, body, ex=ttl_seconds)
    except REDIS_DOWN as exc:
        log.warning("cache_unavailable op=store key=%s error=%s", key, exc)
        return False
    return True


async def read_cached(client: aioredis.Redis, key: str, size: int) -> AsyncIterator[bytes]:
    """The `size` bytes of a cached body, slice by slice; CacheVanished if a slice comes back short.

    A key can expire (or be replaced) between two slices; the caller has already sent the
    status line by then, so it must not end the body as if it were complete.
    """
    for start in range(0, size, READ_SLICE_BYTES):
        end = min(size, start + READ_SLICE_BYTES)
        piece = await client.getrange(key, start, end - 1)
        if len(piece) != end - start:
            raise CacheVanished(f"{key} changed or expired after {start + len(piece)} of {size} bytes were replayed")
        yield piece


class CacheWriter:
    """Collects a body in Redis as it is sent; publish() makes it visible under its key.

    Redis failures never reach the caller: the first one stops this writer (logged), and
    publish() then does nothing.
    """

    def __init__(self, client: aioredis.Redis, key: str, ttl_seconds: int) -> None:
        self.client = client
        self.key = key
        self.ttl = ttl_seconds
        self.temp_key = f"{key}:partial:{uuid.uuid4().hex}"
        self.written = 0
        self.failed = False

    def _give_up(self, op: str, exc: Exception) -> None:
        if not self.failed:
            log.warning("cache_write_abandoned op=%s key=%s bytes=%d error=%s", op, self.key, self.written, exc)
        self.failed = True

    async def append(self, piece: bytes) -> None:
        if not piece or self.failed:
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.append(self.temp_key, piece)
                # A writer that dies midway leaves nothing behind for long.
                pipe.expire(self.temp_key, 600)
                await pipe.execute()
        except REDIS_DOWN as exc:
            self._give_up("append", exc)
            return
        self.written += len(piece)

    async def publish(self) -> None:
        if self.written == 0:
            return
        if self.failed:
            await self.discard()
            return
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.rename(self.temp_key, self.key)
                pipe.expire(self.key, self.ttl)
                await pipe.execute()
        except REDIS_DOWN as exc:
            self._give_up("publish", exc)

    async def discard(self) -> None:
        try:
            await self.client.delete(self.temp_key)
        except REDIS_DOWN as exc:
            # The temporary key expires on its own (600 s).
            log.warning("cache_discard_failed key=%s error=%s", self.temp_key, exc)
