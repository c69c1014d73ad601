"""web-download: fetch image data from an http(s) URL without letting the URL reach inside the cloud.

Every connection, the first and the one of each redirect, goes to an address resolved and
checked just before by the outbound address policy (spyglass.egress), and to no other:
connecting to the very address that was checked also defeats DNS rebinding. Proxies from the
environment are not used (the proxy, not the target, would be checked).

Only http and https, at most MAX_REDIRECTS redirects, each read or connect within IDLE_TIMEOUT;
the caller bounds the whole transfer (`web_download_timeout_seconds`) and its size.
httpcore's errors are translated here, at the boundary, into `OutboundError`.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import anyio
import httpcore

from spyglass.egress import AddressPolicy, OutboundError, valid_host
from spyglass.errors import Invalid

SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
IDLE_TIMEOUT = 60.0
USER_AGENT = b"spyglass-web-download"


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
    except OutboundError as exc:
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
        raise OutboundError("web-download does not use unix sockets.")

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
                raise OutboundError(f"{url} answered HTTP {response.status}.")
            return url, response
        location = _header(response, b"location")
        await response.aclose()
        if location is None:
            raise OutboundError(f"{url} redirected without a Location.")
        url = urljoin(url, location)
    raise OutboundError(f"{uri} redirected more than {MAX_REDIRECTS} times.")


async def _get(pool: httpcore.AsyncConnectionPool, url: str) -> httpcore.Response:
    try:
        parts = check_uri(url)
    except Invalid as exc:
        raise OutboundError(exc.message) from exc
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
    except OutboundError:
        raise
    except (httpcore.TimeoutException, TimeoutError) as exc:
        raise OutboundError(f"The download timed out ({exc or 'no data'}).") from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, OSError) as exc:
        raise OutboundError(f"The download failed: {exc}") from exc
