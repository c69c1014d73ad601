"""Request limits through the real server (uvicorn with httptools), over a raw socket.

The body tests leave the request body unfinished: the server must answer 413 without waiting for
the rest, which it never gets. A server that read the whole body first would never answer, and
the socket's timeout would end the test.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from tests.e2e.conftest import Server

TIMEOUT_SECONDS = 30


def _exchange(server: Server, head: bytes, body: bytes = b"") -> bytes:
    """Send the request head and the start of a body; the status line and headers of the answer."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=TIMEOUT_SECONDS) as sock:
        sock.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            got = sock.recv(65536)
            if not got:
                break
            answer += got
    return answer


def _head(*headers: str, target: str = "/identity/v3/auth/tokens") -> bytes:
    lines = [f"POST {target} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_declared_256_mib_token_request_is_refused_before_its_body(server: Server) -> None:
    answer = _exchange(server, _head(f"Content-Length: {256 * 1024 * 1024}"))
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_a_chunked_token_request_is_refused_once_past_the_limit(server: Server) -> None:
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"  # 64 KiB chunks; the body is never finished
    answer = _exchange(server, _head("Transfer-Encoding: chunked"), chunk * 4)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_a_one_mib_header_is_431(server: Server) -> None:
    answer = _exchange(server, _head("X-Big: " + "a" * 1024 * 1024, "Content-Length: 0"))
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_ten_thousand_headers_are_431(server: Server) -> None:
    many = [f"X-H{i}: 1" for i in range(10_000)]
    answer = _exchange(server, _head(*many, "Content-Length: 0"))
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"x-openstack-request-id" in answer.lower()
