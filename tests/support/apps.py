"""The app inside the test process, from cheapest to most real (support.servers runs it as a subprocess).

- `asgi_client(settings)`: sanic-testing's ASGI client. Each request runs the server start and
  stop listeners, so every request sees fresh connections and fresh DB slots: fine for
  contracts, useless for concurrency. It also does not enforce REQUEST_MAX_SIZE (Sanic's HTTP
  protocol does), so PAYLOAD_TOO_LARGE is tested on a live server.
- `live_server(settings)`: the app served by Sanic's real HTTP server inside the test's event loop
  (create_server), so a test can watch the app's state (e.g. its DB slots) while requests run.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sanic import Sanic
from sanic_testing.testing import SanicASGITestClient

from sanic_trace.app import create_app
from sanic_trace.settings import Settings


def make_app(settings: Settings) -> Sanic:
    # No supervisor: these tests never run jobs, and a supervisor thread per request would only cost time.
    return create_app(settings, name=f"api{uuid.uuid4().hex}", with_supervisor=False)


def asgi_client(settings: Settings) -> SanicASGITestClient:
    return SanicASGITestClient(make_app(settings))


@dataclass
class LiveServer:
    app: Sanic
    url: str

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=kwargs.pop("timeout", 60), **kwargs)


@asynccontextmanager
async def live_server(settings: Settings, *, send_buffer_bytes: int | None = None) -> AsyncIterator[LiveServer]:
    """The app on Sanic's HTTP server, in this event loop, on a free port.

    `send_buffer_bytes` fixes the kernel send buffer of its connections (otherwise autotuned up to
    megabytes): a test can then make the server block on a client that does not read.
    """
    app = make_app(settings)
    # TouchUp rewrites Sanic's own methods at start-up, once per process: a second app started in
    # this process would fail on the rewritten source. Nothing about the service depends on it.
    app.config.TOUCHUP = False
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer_bytes is not None:
        # Accepted connections inherit it from the listening socket.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.start_serving()
    await server.after_start()
    try:
        yield LiveServer(app, f"http://127.0.0.1:{port}")
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
        sock.close()
