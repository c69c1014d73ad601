"""The member add + remove pair of issue 13, old code against new in the same run: `POST
/v2/images/{id}/members` then `DELETE /v2/images/{id}/members/{member}`, one pair at a time.

For each database (SQLite, and PostgreSQL with `--postgres URL`) starts `spyglass serve --demo`
(one worker) from the new tree and from `--old REV` (checked out in a temporary git worktree, by
default the merge-base with main), both at once; on each, demo project A shares one image and adds
and removes a third project. Pairs alternate old and new (--rounds x --pairs of each), so drift
on a shared machine hits both; prints the p50 and p90 of a pair over all rounds and the new/old ratio:

    .venv/bin/python bench/member_pair.py [--old REV] [--postgres URL] [--rounds 6] [--pairs 50]

bench/small_requests.py measures the same pair among the other small requests (and counts its SQL
statements); this one is quicker. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from small_requests import (
    ADMIN_PASSWORD,
    NEW,
    Server,
    demo_token,
    old_tree,
    postgres_database,
    token,
)


class Pair:
    """One server, one shared image of project A, and a project A adds and removes."""

    def __init__(self, server: Server) -> None:
        admin = token(
            server.url,
            {"name": "admin", "domain": {"id": "default"}},
            {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD},
        )
        made = httpx.post(
            f"{server.url}/identity/v3/projects",
            json={"project": {"name": "bench-member", "domain_id": "default"}},
            headers={"X-Auth-Token": admin},
        )
        made.raise_for_status()
        self.member = made.json()["project"]["id"]
        self.client = httpx.Client(
            base_url=server.url, headers={"X-Auth-Token": demo_token(server, "spyglass-a")}, timeout=60
        )
        body = {"name": "shared", "disk_format": "raw", "container_format": "bare", "visibility": "shared"}
        created = self.client.post("/v2/images", json=body)
        created.raise_for_status()
        self.members = f"/v2/images/{created.json()['id']}/members"

    def once(self) -> float:
        start = time.perf_counter()
        self.client.post(self.members, json={"member": self.member}).raise_for_status()
        self.client.delete(f"{self.members}/{self.member}").raise_for_status()
        return (time.perf_counter() - start) * 1000


def measure(backend: str, trees: dict[str, Path], args: argparse.Namespace, work: Path) -> None:
    servers: dict[str, Server] = {}
    try:
        for name, code in trees.items():
            url = postgres_database(args.postgres, f"bench_pair_{name}") if backend == "postgresql" else ""
            servers[name] = Server(code, work / f"{backend}-{name}", url, workers=1)
        pairs = {name: Pair(server) for name, server in servers.items()}
        taken: dict[str, list[float]] = {name: [] for name in pairs}
        for pair in pairs.values():
            for _ in range(10):  # warm-up: pools, caches
                pair.once()
        order = list(pairs)
        for _ in range(args.rounds * args.pairs):
            order.reverse()  # old then new, new then old: whichever goes second is not always the same
            for name in order:
                taken[name].append(pairs[name].once())
        p50 = {name: statistics.median(times) for name, times in taken.items()}
        for name, times in taken.items():
            p90 = statistics.quantiles(times, n=10)[-1]
            print(f"  {backend:10} {name}: pair p50 {p50[name]:6.2f} ms  p90 {p90:6.2f} ms", flush=True)
        print(f"  {backend:10} new/old p50 x{p50['new'] / p50['old']:.2f}", flush=True)
    finally:
        for server in servers.values():
            server.stop()
        if backend == "postgresql":
            for name in trees:
                postgres_database(args.postgres, f"bench_pair_{name}", drop_only=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--old", default="", help="git revision of the old code (default: merge-base with main)"
    )
    parser.add_argument("--postgres", default="", help="PostgreSQL server URL; also measure there")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-pair-"))
    old = old_tree(args.old, work)
    try:
        trees = {"old": old, "new": NEW}
        for backend in [*(["sqlite"] if args.sqlite else []), *(["postgresql"] if args.postgres else [])]:
            measure(backend, trees, args, work)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=NEW, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
