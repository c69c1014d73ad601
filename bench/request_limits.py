"""Resident memory of a real `spyglass serve` under oversized token requests and headers.

Starts a server on a free port with a fresh data directory, then sends N parallel token requests
(`POST /identity/v3/auth/tokens`, unauthenticated) whose bodies stream S MiB in 64 KiB chunks
without Content-Length, then one with a 1 MiB header and one with 10,000 headers. Prints each
answer's status and the server's resident memory before and at its peak (VmHWM, from /proc).
Numbers only; nothing is asserted.

    .venv/bin/python bench/request_limits.py [--parallel 4] [--size-mib 256]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
CHUNK = 64 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _memory_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _status(answer: bytes) -> str:
    return answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(connection closed)"


def _streamed_body(port: int, size_mib: int, results: list[str]) -> None:
    head = (
        b"POST /identity/v3/auth/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = f"{CHUNK:x}\r\n".encode() + b"x" * CHUNK + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        try:
            for _ in range(size_mib * 1024 * 1024 // CHUNK):
                sock.sendall(chunk)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed the connection
        try:
            results.append(_status(sock.recv(65536)))
        except OSError as exc:
            results.append(f"({exc.__class__.__name__})")


def _headers(port: int, headers: list[str]) -> str:
    head = "\r\n".join(["GET /v2/images HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        return _status(sock.recv(65536))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--size-mib", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        server = subprocess.Popen(
            [str(BIN / "spyglass"), "--data-dir", f"{tmp}/data", "serve", "--port", str(port), "--demo"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(300):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            before = _memory_mib(server.pid, "VmRSS")
            # The peak so far is start-up's (Argon2 hashing the demo passwords): start it again here.
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")
            results: list[str] = []
            threads = [
                threading.Thread(target=_streamed_body, args=(port, args.size_mib, results))
                for _ in range(args.parallel)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            peak = _memory_mib(server.pid, "VmHWM")
            print(f"{args.parallel} x {args.size_mib} MiB token bodies: {sorted(set(results))}")
            print(f"server RSS before {before:.0f} MiB, peak {peak:.0f} MiB (+{peak - before:.0f})")
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")
            print("one 1 MiB header:", _headers(port, ["X-Big: " + "a" * 1024 * 1024]))
            print("10,000 headers:", _headers(port, [f"X-H{i}: 1" for i in range(10_000)]))
            print(f"server RSS peak while answering the headers {_memory_mib(server.pid, 'VmHWM'):.0f} MiB")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
