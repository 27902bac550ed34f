"""Reading a job's NDJSON stream over HTTP, as a client would, and the bare Redis read it is held to.

Records lines are megabytes (a chunk of TRACE_STREAM_BATCH_SIZE records spliced in as stored),
so they are never parsed whole: their head carries the type and the record count. The small
lines (meta, domain_start/end, complete, error, progress) are parsed.
"""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass

import httpx
import redis

from jobs import JobKeys
from sanic_trace.results.layout import INDEX_SUFFIX, ResultIndex, chunk_suffix

# Compare like with like: the bare Redis loop sends no gzip, so neither does this reader.
IDENTITY = {"Accept-Encoding": "identity"}
_RECORDS_HEAD = b'{"type":"records"'
_COUNT = re.compile(rb'"count":(\d+)')
READ_BUFFER = 1 << 20


@dataclass
class StreamRead:
    bytes: int = 0
    records: int = 0
    first_records_at: float | None = None  # epoch seconds, when the first records line had fully arrived
    complete_total: int | None = None  # total_records of the complete line
    error: str | None = None  # code of an error line
    seconds: float = 0.0


def read_stream(client: httpx.Client, url: str, *, stop_after_first_records: bool = False) -> StreamRead:
    """Follow a job stream line by line to its end (or to its first records line)."""
    started = time.perf_counter()
    with client.stream("GET", url, headers=IDENTITY) as response:
        read = StreamRead()
        if response.status_code != 200:
            response.read()
            read.error = f"HTTP {response.status_code}: {response.text[:200]}"
            return read
        pending = bytearray()
        for piece in response.iter_raw():
            read.bytes += len(piece)
            pending += piece
            end = pending.find(b"\n")
            while end >= 0:
                _take_line(read, bytes(pending[:end]))
                del pending[: end + 1]
                end = pending.find(b"\n")
            if stop_after_first_records and read.first_records_at is not None:
                break
    read.seconds = time.perf_counter() - started
    return read


def _take_line(read: StreamRead, line: bytes) -> None:
    if line.startswith(_RECORDS_HEAD):
        match = _COUNT.search(line, 0, 200)
        read.records += int(match.group(1)) if match else 0
        if read.first_records_at is None:
            read.first_records_at = time.time()
        return
    message = json.loads(line)
    if message.get("type") == "complete":
        read.complete_total = message.get("total_records")
    elif message.get("type") == "error":
        read.error = message.get("code")


def drain_stream(host: str, port: int, path: str) -> tuple[int, float, bytes]:
    """Bytes and seconds of reading a whole stream over a bare socket; plus the response's last bytes.

    A Python HTTP client tops out near the rates measured here (httpx's 64 KB reads cost more
    than the server's work per byte), so the read rate would be the client's. This reads the
    response as a C client would, into one reused buffer, and counts: HTTP/1.1 with
    `Connection: close`, so the end of the body is the end of the connection.
    """
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    ).encode()
    buffer = bytearray(READ_BUFFER)
    view = memoryview(buffer)
    size = 0
    tail = b""
    started = time.perf_counter()
    with socket.create_connection((host, port), timeout=120) as sock:
        sock.sendall(request)
        while True:
            received = sock.recv_into(buffer)
            if not received:
                break
            size += received
            tail = (tail + bytes(view[max(0, received - 4096) : received]))[-4096:]
    return size, time.perf_counter() - started, tail


def chunk_keys(client: redis.Redis, prefix: str, job_id: str) -> list[str]:
    """Every chunk key of a finished job, in stream order."""
    keys = JobKeys(prefix, job_id)
    index = ResultIndex.parse(client.hgetall(keys.data(INDEX_SUFFIX)))
    if index is None:
        raise RuntimeError(f"job {job_id} has no result index")
    return [
        keys.data(chunk_suffix(domain, n)) for domain in index.domains for n in range(index.per_domain[domain].chunks)
    ]


def get_loop(client: redis.Redis, keys: list[str]) -> tuple[int, float]:
    """Bytes and seconds of a bare GET loop over the keys: one round trip per chunk, as the stream does."""
    started = time.perf_counter()
    size = 0
    for key in keys:
        value = client.get(key)
        if value is None:
            raise RuntimeError(f"{key} is gone")
        size += len(value)
    return size, time.perf_counter() - started
