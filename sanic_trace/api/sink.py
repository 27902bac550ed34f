"""A streaming response body, gzip-compressed on the fly when the client accepts it.

Compression is incremental (one zlib stream, a sync flush per send), so a compressed body is
never buffered: each piece goes out as soon as it is compressed, and a live NDJSON line
reaches the client without waiting for more data.
"""

from __future__ import annotations

import zlib
from typing import Any

from sanic import Request


def accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip()
            return not (q.startswith("q=") and float(q[2:] or 0) == 0)
    return False


class Sink:
    def __init__(self, response: Any, gzip: bool) -> None:
        self.response = response
        self.bytes_in = 0
        # wbits 31: a gzip container (16) around a 32 KB window deflate stream (15).
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None

    @classmethod
    async def open(cls, request: Request, content_type: str, headers: dict[str, str] | None = None) -> Sink:
        gzip = accepts_gzip(request)
        all_headers = {"Vary": "Accept-Encoding", "X-Request-ID": request.ctx.request_id, **(headers or {})}
        if gzip:
            all_headers["Content-Encoding"] = "gzip"
        response = await request.respond(content_type=content_type, headers=all_headers)
        return cls(response, gzip)

    async def send(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self._compressor is not None:
            data = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if data:
            await self.response.send(data)

    async def eof(self) -> None:
        if self._compressor is not None:
            await self.response.send(self._compressor.flush(zlib.Z_FINISH))
        await self.response.eof()
