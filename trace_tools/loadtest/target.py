"""Which service the harness may load: loopback only, unless the operator says otherwise.

A load test is a small denial-of-service. Pointing it at a shared deployment by a typo
must not be possible, so a target is accepted only when every address its host resolves
to is loopback (127.0.0.0/8, ::1). Anything else — or a host that does not resolve — is
refused before any connection is made, unless --allow-remote is given.

The host is resolved once here and, for plain http, the harness then connects to the
checked address (with the original Host header), so a name cannot resolve to loopback
for the check and to something else for the load.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


class TargetRefused(Exception):
    """The URL is malformed, or points off this host without --allow-remote."""


@dataclass(frozen=True)
class Target:
    url: str  # what the operator gave, normalised (no trailing slash)
    connect_url: str  # what the client connects to (the pinned loopback address for http)
    host_header: str | None  # the Host header to send when connect_url differs from url
    port: int  # where the psutil sampler looks for the server's listening socket
    loopback: bool


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (no connection is made)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def check_target(url: str, allow_remote: bool) -> Target:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(f"--url must be an http:// or https:// URL with a host; got {url!r}")
    if parts.query or parts.fragment:
        raise TargetRefused(f"--url must be the service's base URL, without a query or fragment; got {url!r}")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused(f"--url has an invalid port: {url!r}") from None
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        if allow_remote:
            # Let the client report it: the operator asked for a remote target anyway.
            return Target(base, base, None, port, loopback=False)
        raise TargetRefused(f"cannot resolve {host!r} ({exc}); only loopback targets are allowed") from None
    loopback = bool(addresses) and all(is_loopback(a) for a in addresses)
    if not loopback and not allow_remote:
        raise TargetRefused(
            f"{host} resolves to {', '.join(addresses)}, which is not loopback (127.0.0.0/8, ::1): "
            "refusing to load a remote service; pass --allow-remote if that is what you mean"
        )
    if not loopback or parts.scheme != "http" or _is_ip_literal(host):
        return Target(base, base, None, port, loopback)
    # Pin the checked address (TLS needs the name for SNI and certificates, so https is not pinned).
    pinned = addresses[0]
    netloc = f"[{pinned}]:{port}" if ":" in pinned else f"{pinned}:{port}"
    connect = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return Target(base, connect, parts.netloc, port, loopback)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
