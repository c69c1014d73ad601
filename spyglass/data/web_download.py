"""web-download: fetch image data from an http(s) URL without letting the URL reach inside the cloud.

A URL given by a user must not make Spyglass read from the host it runs on or from the private
network around it (metadata services, databases, admin APIs): server-side request forgery.
Every connection, the first and the one of each redirect, goes to an address resolved and
checked just before, and to no other: loopback, private, link-local, shared, reserved, multicast
and unspecified addresses are refused unless they lie in `web_download_allowed_networks`. An IPv6
address that carries an IPv4 one (mapped, compatible, SIIT, NAT64 64:ff9b::/96, 6to4) is judged as
that IPv4 address; the tunnels whose end cannot be judged (Teredo, NAT64 local-use) are refused, as
are deprecated site-local and 6to4-relay addresses. A refusal never says what a name resolved to.
Connecting to the very address that was checked also defeats DNS rebinding. Proxies from the
environment are not used (the proxy, not the target, would be checked).

Only http and https, at most MAX_REDIRECTS redirects, each read or connect within IDLE_TIMEOUT;
the caller bounds the whole transfer (`web_download_timeout_seconds`) and its size.
httpcore's errors are translated here, at the boundary, into `WebDownloadError`.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import anyio
import httpcore

from spyglass.errors import Invalid
from spyglass.settings import Settings

SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
IDLE_TIMEOUT = 60.0
USER_AGENT = b"spyglass-web-download"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebDownloadError(Exception):
    """The data could not be fetched; the message says why."""


# IPv6 prefixes whose last 32 bits are the IPv4 address a packet ends up at: such an address is
# judged as that IPv4 address. (`::` and `::1` lie in the first one too: judged as 0.0.0.0 and
# 0.0.0.1 they are refused as they would be themselves.)
_LAST_32_IS_IPV4 = tuple(
    ipaddress.IPv6Network(prefix)
    for prefix in (
        "::/96",  # IPv4-compatible (deprecated)
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b::/96",  # NAT64 well-known prefix
    )
)
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")  # bits 16-48 are the IPv4 address
# Refused even where the standard library calls them global: where they lead cannot be judged.
_UNJUDGEABLE = tuple(
    ipaddress.ip_network(prefix)
    for prefix in (
        "64:ff9b:1::/48",  # NAT64 local-use: the IPv4 address may sit anywhere in it (RFC 8215)
        "2001::/32",  # Teredo: the client's IPv4 address is obfuscated, a relay decides the rest
        "fec0::/10",  # site-local (deprecated), still routed inside some networks
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated): leads to whichever relay is nearest
    )
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def embedded_ipv4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to (mapped, compatible, SIIT, NAT64, 6to4), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if any(ip in prefix for prefix in _LAST_32_IS_IPV4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses web-download and webhook deliveries may connect to."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> AddressPolicy:
        networks = settings.web_download_allowed_networks
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    def permits(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if self._allows(ip):
            return True
        judged = embedded_ipv4(ip)
        if judged is not None:
            return self._allows(judged) or _outside(judged)
        return _outside(ip)

    def _allows(self, ip: Address) -> bool:
        return any(ip in network for network in self.allowed)

    def choose(self, host: str, addresses: Iterable[str]) -> str:
        """The address to connect to; refused when any address of the host is not permitted.

        The refusal names the address only when the user typed it: what a name resolves to
        inside the cloud is not theirs to learn."""
        found = list(dict.fromkeys(addresses))
        if not found:
            raise WebDownloadError(f"{host} has no address.")
        if not all(self.permits(address) for address in found):
            named = f"{host} is" if host in found else f"{host} resolves to"
            raise WebDownloadError(f"{named} an address web-download may not reach ({REFUSED_KINDS}).")
        return found[0]


REFUSED_KINDS = "loopback, private, link-local, multicast, reserved, unspecified or tunnelled inside"


def _outside(ip: Address) -> bool:
    """A public unicast address, outside the networks Spyglass runs in."""
    return ip.is_global and not ip.is_multicast and not any(ip in prefix for prefix in _UNJUDGEABLE)


def valid_host(hostname: str) -> bool:
    """A host name DNS can carry (IDNA: no empty label, none over 63 characters)."""
    try:
        hostname.encode("idna")
    except UnicodeError:
        return False
    return True


def check_uri(uri: Any) -> SplitResult:
    """An http(s) URL with a host, or Invalid (Glance's message for URLs it filters out)."""
    parts = urlsplit(uri) if isinstance(uri, str) else None
    if parts is None or parts.scheme not in SCHEMES or not parts.hostname or _bad_port(parts):
        raise Invalid(f"URI for web-download does not pass filtering: {uri}")
    if not valid_host(parts.hostname):
        raise Invalid(
            f"URI for web-download does not pass filtering: {parts.hostname} is not a valid host name."
        )
    return parts


def _bad_port(parts: SplitResult) -> bool:
    try:
        return parts.port == 0
    except ValueError:
        return True


def check_target(uri: Any, policy: AddressPolicy) -> None:
    """The checks an import request gets at once (blocking: run it in a worker thread)."""
    parts = check_uri(uri)
    host, port = str(parts.hostname), _port(parts)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Invalid(f"URI for web-download does not pass filtering: cannot resolve {host}.") from exc
    try:
        policy.choose(host, (str(info[4][0]) for info in infos))
    except WebDownloadError as exc:
        raise Invalid(f"URI for web-download does not pass filtering: {exc}") from exc


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, and connects to the checked address only."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with anyio.fail_after(timeout):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        address = self._policy.choose(host, (str(info[4][0]) for info in infos))
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise WebDownloadError("web-download does not use unix sockets.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@dataclass(frozen=True)
class Fetched:
    url: str
    content_length: int | None
    body: AsyncIterator[bytes]


@asynccontextmanager
async def fetch(uri: str, policy: AddressPolicy) -> AsyncIterator[Fetched]:
    """GET the URL, following redirects; the body streams while the context is open."""
    pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl.create_default_context(), network_backend=_GuardedBackend(policy)
    )
    async with pool:
        url, response = await _follow(pool, uri)
        try:
            yield Fetched(url, _content_length(response), _body(response))
        finally:
            with anyio.CancelScope(shield=True), _translated():
                await response.aclose()


async def _follow(pool: httpcore.AsyncConnectionPool, uri: str) -> tuple[str, httpcore.Response]:
    url = uri
    for _ in range(MAX_REDIRECTS + 1):
        response = await _get(pool, url)
        if response.status not in REDIRECTS:
            if response.status != 200:
                await response.aclose()
                raise WebDownloadError(f"{url} answered HTTP {response.status}.")
            return url, response
        location = _header(response, b"location")
        await response.aclose()
        if location is None:
            raise WebDownloadError(f"{url} redirected without a Location.")
        url = urljoin(url, location)
    raise WebDownloadError(f"{uri} redirected more than {MAX_REDIRECTS} times.")


async def _get(pool: httpcore.AsyncConnectionPool, url: str) -> httpcore.Response:
    try:
        parts = check_uri(url)
    except Invalid as exc:
        raise WebDownloadError(exc.message) from exc
    host = parts.netloc.rsplit("@", 1)[-1]
    request = httpcore.Request(
        "GET",
        url,
        headers=[
            (b"Host", host.encode("idna")),
            (b"User-Agent", USER_AGENT),
            (b"Accept-Encoding", b"identity"),
        ],
        extensions={"timeout": dict.fromkeys(("connect", "read", "write", "pool"), IDLE_TIMEOUT)},
    )
    with _translated():
        return await pool.handle_async_request(request)


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _content_length(response: httpcore.Response) -> int | None:
    value = _header(response, b"content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


async def _body(response: httpcore.Response) -> AsyncIterator[bytes]:
    with _translated():
        async for chunk in response.aiter_stream():
            yield chunk


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except WebDownloadError:
        raise
    except (httpcore.TimeoutException, TimeoutError) as exc:
        raise WebDownloadError(f"The download timed out ({exc or 'no data'}).") from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, OSError) as exc:
        raise WebDownloadError(f"The download failed: {exc}") from exc
