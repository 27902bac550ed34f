"""A streaming response body, gzip-compressed on the fly when the client accepts it.

Compression is incremental (one zlib stream, a sync flush per send), so a compressed body is
never buffered: each piece goes out as soon as it is compressed, and a live NDJSON line
reaches the client without waiting for more data.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

from sanic import Request


def _quality(params: str) -> float:
    """The q of one Accept-Encoding entry (1 when absent; 0 when malformed, i.e. not acceptable)."""
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0


def accepts_gzip(header: str | Request) -> bool:
    """True when the Accept-Encoding header accepts gzip with q > 0 (an explicit gzip entry wins over *)."""
    if not isinstance(header, str):
        header = header.headers.get("accept-encoding", "")
    explicit: float | None = None
    wildcard: float | None = None
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        if name in ("gzip", "x-gzip"):
            explicit = max(explicit or 0.0, _quality(params))
        elif name == "*":
            wildcard = _quality(params)
    quality = explicit if explicit is not None else wildcard
    return quality is not None and quality > 0


# Level 1: about 3x the speed of the default 6 (some 75 MB/s against 28 on a chunk of 5,000 history
# records) for a ratio of 8 instead of 11 on NDJSON/JSON records; one client must not cost a core.
GZIP_LEVEL = 1
# Pieces at least this big are compressed in a thread (zlib releases the GIL): a 5,000-record chunk
# takes ~20 ms to compress, which the event loop must not spend while it serves other requests.
OFFLOAD_BYTES = 64 * 1024


class Sink:
    def __init__(self, response: Any, gzip: bool) -> None:
        self.response = response
        # wbits 31: a gzip container (16) around a 32 KB window deflate stream (15).
        self._compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if gzip else None

    @classmethod
    async def open(cls, request: Request, content_type: str, headers: dict[str, str] | None = None) -> Sink:
        gzip = accepts_gzip(request)
        all_headers = {"Vary": "Accept-Encoding", "X-Request-ID": request.ctx.request_id, **(headers or {})}
        if gzip:
            all_headers["Content-Encoding"] = "gzip"
        response = await request.respond(content_type=content_type, headers=all_headers)
        return cls(response, gzip)

    async def send(self, data: bytes) -> None:
        if self._compressor is not None:
            # One piece at a time (each send is awaited), so the compressor is never used concurrently.
            data = await asyncio.to_thread(self._compress, data) if len(data) >= OFFLOAD_BYTES else self._compress(data)
        if data:
            await self.response.send(data)

    def _compress(self, data: bytes) -> bytes:
        assert self._compressor is not None
        return self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    async def eof(self) -> None:
        if self._compressor is not None:
            await self.response.send(self._compressor.flush(zlib.Z_FINISH))
        await self.response.eof()
