"""Where a webhook may point: SSRF checks at creation and again at every send.

A URL is refused unless it is `http(s)://` with a host that resolves only to public addresses:
loopback, link-local, private, multicast, reserved and unspecified ranges are refused (IPv4 and
IPv6, IPv4-mapped IPv6 included) unless `DOSSIER_WEBHOOK_ALLOW_PRIVATE=1`. At send time the
host is resolved once more and the request goes to the address that was checked (the Host
header and TLS SNI keep the name), so a DNS answer that changes between check and connect
cannot redirect a delivery inside the network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from resolvers.errors import BadUserInputError

SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2000


class UnsafeURLError(BadUserInputError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid input: url: {reason}", field="url")
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """A checked URL: the address to connect to, and the name to present."""

    url: str  # with the checked address in place of the host name
    host: str  # for the Host header and TLS SNI
    address: str


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or not address.is_global
    )


def parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable URL, or UnsafeURLError."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeURLError(f"a URL of 1-{MAX_URL_LENGTH} characters is required")
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES:
        raise UnsafeURLError("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURLError("credentials in the URL are not allowed")
    host = parts.hostname
    if not host:
        raise UnsafeURLError("the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURLError("the port is not valid") from None
    return parts.scheme, host, port


async def resolve(host: str, port: int) -> list[str]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        return [str(literal)]
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeURLError("the host does not resolve") from None
    return sorted({str(info[4][0]) for info in found})


async def check_url(url: str, *, allow_private: bool) -> Target:
    """The URL checked now: every address its host resolves to must be public."""
    scheme, host, port = parse(url)
    addresses = await resolve(host, port)
    if not addresses:
        raise UnsafeURLError("the host does not resolve")
    if not allow_private:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address.split("%", 1)[0])):
                raise UnsafeURLError("the host resolves to a private or reserved address")
    address = addresses[0]
    parts = urlsplit(url.strip())
    shown = f"[{address}]" if ":" in address else address
    netloc = f"{shown}:{port}"
    return Target(
        url=urlunsplit((scheme, netloc, parts.path or "/", parts.query, "")),
        host=host if parts.port is None else f"{host}:{port}",
        address=address,
    )
