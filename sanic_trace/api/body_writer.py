"""The one writer of 200 response bodies: gzip when asked, an optional cache tee, and the cut rule.

Every body the stages and the job routes answer with goes through a BodyWriter: the inline
events stream, stage cache replays, the seed-resolve / lineage / page bodies built in memory,
the live job stream and a job's whole /result. So one set of rules holds for all of them:

- **gzip** when the request's Accept-Encoding accepts it (`Content-Encoding: gzip`, and
  `Vary: Accept-Encoding` either way). Compression is incremental — one zlib stream, a sync
  flush per piece — so a compressed body is never buffered and a live NDJSON line reaches the
  client at once. Level 1, and pieces of OFFLOAD_BYTES or more compressed in a thread.
- **the cache tee**: a body being stored (api/cache.py's CacheWriter) receives the pieces
  *uncompressed*, so that a replay can be compressed, or not, for whoever asks for it. It is
  published when the body ended complete, unless the caller withheld it (a partial failure);
  it is discarded otherwise.
- **the cut**: once the first byte (the status line) is out, any failure — the client went
  away, the server is stopping, a chunk or a cached body vanished, Redis failed — aborts the
  connection (transport.abort) instead of ending the chunked body. Sanic would otherwise send
  the terminating chunk, and a truncated body would look complete; a cut body is an incomplete
  chunked read that every HTTP client reports. A failure *before* the first byte is re-raised
  untouched, so the client gets an ordinary error response with its status code.

Usage:

    async with BodyWriter(request, "application/json", headers=..., cache=...) as body:
        await body.send(piece)          # as many as needed; or once: await body.send_all(whole)
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from types import TracebackType

from sanic import Request
from sanic.response import BaseHTTPResponse

from sanic_trace.api.cache import CacheWriter

log = logging.getLogger("sanic_trace.body")

# Level 1: about 3x the speed of the default 6 (some 75 MB/s against 28 on a chunk of 5,000 history
# records) for a ratio of 8 instead of 11 on NDJSON/JSON records; one client must not cost a core.
GZIP_LEVEL = 1
# Pieces at least this big are compressed in a thread (zlib releases the GIL): a 5,000-record chunk
# takes ~20 ms to compress, which the event loop must not spend while it serves other requests.
OFFLOAD_BYTES = 64 * 1024
# wbits 31: a gzip container (16) around a 32 KB window deflate stream (15).
_GZIP_WBITS = 31


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


def accepts_gzip(header: str) -> bool:
    """True when an Accept-Encoding header accepts gzip with q > 0 (an explicit gzip entry wins over *)."""
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


def cut_connection(request: Request) -> None:
    """Abort the connection of a response whose status line is already sent."""
    abort = getattr(request.transport, "abort", None)
    # The ASGI test client's transport has no abort(); a real server's always has.
    if abort is not None:
        abort()


class BodyWriter:
    def __init__(
        self,
        request: Request,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
        cache: CacheWriter | None = None,
    ) -> None:
        self.request = request
        self.content_type = content_type
        self.headers = headers or {}
        self.cache = cache
        self.gzip = accepts_gzip(request.headers.get("accept-encoding", ""))
        self._compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS) if self.gzip else None
        self._response: BaseHTTPResponse | None = None
        self._started = False  # the status line (with the first piece) is on the wire
        self._ended = False
        self._keep_in_cache = True
        self._body_bytes = 0  # uncompressed, for the log line of a cut

    async def __aenter__(self) -> BodyWriter:
        headers = {"Vary": "Accept-Encoding", "X-Request-ID": self.request.ctx.request_id, **self.headers}
        if self.gzip:
            headers["Content-Encoding"] = "gzip"
        # Nothing goes on the wire until the first send: a failure before it is still an error response.
        self._response = await self.request.respond(content_type=self.content_type, headers=headers)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            try:
                await self._end()
            except BaseException as end_failure:
                await self._fail(end_failure)
                raise
            return
        await self._fail(exc)
        # The exception propagates: before the first byte Sanic turns it into an error response; after
        # it, the connection is already cut and Sanic only logs it.

    async def send(self, data: bytes) -> None:
        """One piece of the body (uncompressed): to the cache tee, then compressed or not to the client."""
        if not data:
            return
        self._body_bytes += len(data)
        await self._write(await self._compress(data, final=False))
        if self.cache is not None:
            await self.cache.append(data)

    async def send_all(self, data: bytes) -> None:
        """The whole body in one piece, with a Content-Length (a body built in memory). Ends the body."""
        self._body_bytes += len(data)
        payload = await self._compress(data, final=True)
        assert self._response is not None, "send_all() outside `async with`"
        self._started = True
        await self._response.send(payload, end_stream=True)
        self._ended = True
        if self.cache is not None:
            await self.cache.append(data)

    def withhold_from_cache(self) -> None:
        """This body must not be stored even if it ends complete (e.g. a domain failed midway)."""
        self._keep_in_cache = False

    async def _compress(self, data: bytes, *, final: bool) -> bytes:
        if self._compressor is None:
            return data
        if len(data) >= OFFLOAD_BYTES:
            # One piece at a time (each send is awaited), so the compressor is never used concurrently.
            return await asyncio.to_thread(self._compress_now, data, final)
        return self._compress_now(data, final)

    def _compress_now(self, data: bytes, final: bool) -> bytes:
        assert self._compressor is not None
        return self._compressor.compress(data) + self._compressor.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)

    async def _write(self, payload: bytes) -> None:
        assert self._response is not None, "send() outside `async with`"
        if payload:
            self._started = True
            await self._response.send(payload)

    async def _end(self) -> None:
        if not self._ended:
            assert self._response is not None
            if self._compressor is not None:
                await self._write(self._compressor.flush(zlib.Z_FINISH))
            await self._response.eof()
            self._ended = True
        if self.cache is not None:
            if self._keep_in_cache:
                await self.cache.publish()
            else:
                await self.cache.discard()

    async def _fail(self, exc: BaseException) -> None:
        if self._started:
            cut_connection(self.request)
            level = logging.INFO if isinstance(exc, asyncio.CancelledError) else logging.WARNING
            log.log(
                level,
                "response_cut request_id=%s path=%s body_bytes=%d error=%s: %s",
                self.request.ctx.request_id,
                self.request.path,
                self._body_bytes,
                type(exc).__name__,
                exc,
            )
        if self.cache is not None:
            await self.cache.discard()
