"""Requests per second of an authenticated `GET /v2/images/{id}` with 8 keep-alive clients (wrk):
the embedded identity against `identity = "keystone"` with a warm token cache and with the cache
off (token_cache_time = 0: every request asks Keystone), same run; and the added latency of a cache
miss (one request at a time, median of sequential requests, cache off minus cache warm). The three
servers run side by side and are measured in interleaved rounds (the machine is shared and noisy);
the ratios are each round's, their median printed.

Keystone is the real one of scripts/ensure-keystone.sh (one process on this machine):

    .venv/bin/python bench/keystone_auth.py [--seconds 10] [--rounds 3]

Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.auth_seam import Server  # noqa: E402
from tests.keystone import Keystone, start_keystone  # noqa: E402


class KeystoneServer(Server):
    """A `spyglass serve` trusting Keystone, with the given token_cache_time."""

    def __init__(self, data_dir: Path, keystone: Keystone, cache_time: int) -> None:
        config = data_dir.parent / f"{data_dir.name}.toml"
        options = keystone.authtoken_options(token_cache_time=cache_time)
        lines = [
            f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}"
            for key, value in options.items()
        ]
        config.write_text('identity = "keystone"\n[keystone_authtoken]\n' + "\n".join(lines) + "\n")
        os.environ["SPYGLASS_CONFIG"] = str(config)
        try:
            super().__init__(ROOT, data_dir, "")
        finally:
            del os.environ["SPYGLASS_CONFIG"]
        self.keystone = keystone
        self.account = keystone.account("bench")

    def token(self) -> str:
        # A new token of the same user each round: the test Keystone's tokens last a minute.
        return self.keystone.account_token(self.account)


def wrk(url: str, token: str, seconds: int) -> tuple[float, str]:
    """wrk as bench/auth_seam.py runs it, with a timeout long enough for Keystone on every request."""
    command = ["wrk", "-t1", "-c8", f"-d{seconds}s", "--timeout", "30s", "-H", f"X-Auth-Token: {token}", url]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    latency = re.search(r"Latency\s+(\S+)", out)
    assert rate is not None and latency is not None, out
    return float(rate.group(1)), latency.group(1)


def sequential_ms(url: str, token: str, count: int) -> float:
    # As long as wrk waits: with the cache off, each request waits for Keystone (slow on a busy machine).
    with httpx.Client(headers={"X-Auth-Token": token}, timeout=30) as client:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            client.get(url).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(server: Server, url: str, seconds: int) -> tuple[float, str, float]:
    token = server.token()
    rate, latency = wrk(url, token, seconds)
    return rate, latency, sequential_ms(url, token, 20)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    keystone = Keystone(start_keystone())
    rounds: list[dict[str, tuple[float, str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-keystone-") as tmp:
        work = Path(tmp)
        servers: dict[str, Server] = {}
        try:
            servers["embedded"] = Server(ROOT, work / "embedded", "")
            servers["keystone, cache warm"] = KeystoneServer(work / "warm", keystone, 300)
            servers["keystone, cache off"] = KeystoneServer(work / "off", keystone, 0)
            urls = {}
            for label, server in servers.items():
                token = server.token()
                urls[label] = server.image_url(token)
                wrk(urls[label], token, 2)
            for number in range(1, args.rounds + 1):
                results = {
                    label: measure(server, urls[label], args.seconds) for label, server in servers.items()
                }
                rounds.append(results)
                for label, (rate, latency, one) in results.items():
                    print(
                        f"round {number} {label:22} {rate:8.0f} req/s  "
                        f"(wrk mean latency {latency}; one at a time {one:.2f} ms)"
                    )
        finally:
            for server in servers.values():
                server.stop()
    for label in rounds[0]:
        ratio = statistics.median(r[label][0] / r["embedded"][0] for r in rounds)
        print(f"{label:22} {ratio:5.2f}x embedded (median of {len(rounds)} rounds)")
    miss = statistics.median(r["keystone, cache off"][2] - r["keystone, cache warm"][2] for r in rounds)
    print(f"added latency of a cache miss (one request at a time, median): {miss:.2f} ms")


if __name__ == "__main__":
    main()
