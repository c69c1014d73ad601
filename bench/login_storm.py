"""Image listing latency while 50 clients send wrong passwords: old code against new, same run.

Starts a real `spyglass serve` (fresh data directory, free port, SQLite) for each of: the old code
(a git worktree of the base commit, run from the same virtualenv through PYTHONPATH), the new code
with login throttling turned off (only the bound on concurrent password checks acts), and the new
code with its defaults. For each it lists images sequentially from one client while idle, then
again while 50 threads keep posting wrong passwords for the admin user, and prints p50/p95 of
`GET /v2/images`, the storm's answers by status, and the ratios. Numbers only; nothing is asserted.

    git worktree add --detach /tmp/bench-old <base commit>
    .venv/bin/python bench/login_storm.py --old /tmp/bench-old [--requests 60] [--storm 50]
"""

from __future__ import annotations

import argparse
import collections
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-admin-password"


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(code: Path, data_dir: Path, env: dict[str, str]) -> Server:
    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": str(code), "SPYGLASS_ADMIN_PASSWORD": PASSWORD, **env}
    command = [sys.executable, "-c", "from spyglass.cli import main; main()"]
    args = ["--data-dir", str(data_dir), "serve", "--port", str(port)]
    log = (data_dir.parent / f"{data_dir.name}.log").open("wb")
    process = subprocess.Popen(
        [*command, *args], cwd=code, env=full_env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/", timeout=1)
            return Server(url, process)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server for {code} did not start")


def stop(server: Server) -> None:
    server.process.terminate()
    server.process.wait(20)


def auth_body(password: str) -> dict[str, object]:
    user = {"name": "admin", "domain": {"id": "default"}, "password": password}
    scope = {"project": {"name": "admin", "domain": {"id": "default"}}}
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}, "scope": scope}}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def list_latencies(url: str, token: str, requests: int) -> list[float]:
    samples = []
    with httpx.Client(headers={"X-Auth-Token": token}, timeout=120) as client:
        for _ in range(requests):
            began = time.perf_counter()
            client.get(f"{url}/v2/images").raise_for_status()
            samples.append((time.perf_counter() - began) * 1000)
    return samples


def storm(
    url: str, clients: int, stop_event: threading.Event
) -> tuple[collections.Counter[int], list[threading.Thread]]:
    statuses: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()

    def hammer() -> None:
        with httpx.Client(timeout=120) as client:
            while not stop_event.is_set():
                status = client.post(f"{url}/identity/v3/auth/tokens", json=auth_body("wrong")).status_code
                with lock:
                    statuses[status] += 1

    threads = [threading.Thread(target=hammer) for _ in range(clients)]
    for thread in threads:
        thread.start()
    return statuses, threads


def measure(
    label: str, code: Path, env: dict[str, str], work: Path, args: argparse.Namespace
) -> dict[str, float]:
    server = start(code, work / label, env)
    try:
        response = httpx.post(f"{server.url}/identity/v3/auth/tokens", json=auth_body(PASSWORD), timeout=60)
        response.raise_for_status()
        token = response.headers["X-Subject-Token"]
        idle = list_latencies(server.url, token, args.requests)
        stop_event = threading.Event()
        statuses, threads = storm(server.url, args.storm, stop_event)
        time.sleep(2)  # let the storm build up
        began = time.perf_counter()
        loaded = list_latencies(server.url, token, args.requests)
        seconds = time.perf_counter() - began
        stop_event.set()
        for thread in threads:
            thread.join()
    finally:
        stop(server)
    row = {
        "idle p50": statistics.median(idle),
        "idle p95": percentile(idle, 0.95),
        "storm p50": statistics.median(loaded),
        "storm p95": percentile(loaded, 0.95),
    }
    shown = "  ".join(f"{k} {v:8.1f} ms" for k, v in row.items())
    answers = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
    print(f"{label:<22} {shown}  storm answers in {seconds:.1f} s: {answers}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", type=Path, required=True, help="a worktree of the code to compare with")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--storm", type=int, default=50)
    args = parser.parse_args()
    print(
        f"{os.cpu_count()} cores; {args.storm} clients sending wrong passwords; {args.requests} listings each"
    )
    no_throttle = {
        "SPYGLASS_LOGIN_FAILURES_PER_USER_ADDRESS": "0",
        "SPYGLASS_LOGIN_FAILURES_PER_ADDRESS": "0",
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        old = measure("old", args.old, {}, work, args)
        bounded = measure("new, no throttling", ROOT, no_throttle, work, args)
        new = measure("new, defaults", ROOT, {}, work, args)
    for label, row in (("new, no throttling", bounded), ("new, defaults", new)):
        print(
            f"old / {label}: storm p50 {old['storm p50'] / row['storm p50']:.1f}x,"
            f" storm p95 {old['storm p95'] / row['storm p95']:.1f}x"
        )


if __name__ == "__main__":
    main()
