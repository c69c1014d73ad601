"""Download throughput of an image held in the real Swift, uncached and from the image cache, in one run.

Starts (or reuses) the one-node Swift of scripts/swift-saio.sh and a real `spyglass serve` whose one
store is a Swift container and whose image cache is on, uploads an image of --size-mib (default 512)
and downloads it with curl, in MiB/s:
  - from Swift, not cached: a `Range: bytes=0-` request (ranges never fill the cache), after the
    cache was cleared,
  - from Swift while filling the cache (the first whole download: written and hashed on the way),
  - from the cache (the next whole downloads).
Each row is the best of --repeat runs, and every download is checked for its length. Numbers only;
nothing is asserted. Client, server and Swift share this machine's cores, so the numbers are relative.

    .venv/bin/python bench/image_cache.py [--size-mib 512] [--repeat 3] [--saio-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.data_path import generate, token_for  # noqa: E402
from bench.object_stores import start_swift  # noqa: E402
from tests.blobs.conftest import purge, unique_name  # noqa: E402
from tests.e2e.conftest import Server, start_server, stop_server  # noqa: E402

MiB = 1024 * 1024


def config(env: dict[str, str], container: str, cache_bytes: int) -> str:
    return f"""
image_cache = true
image_cache_max_size = {cache_bytes}

[stores.swift1]
type = "swift"
auth_url = "{env["ST_AUTH"]}"
user = "{env["ST_USER"]}"
key = "{env["ST_KEY"]}"
container = "{container}"
"""


def download(url: str, token: str, *headers: str) -> int:
    """Bytes received by curl (the body goes to /dev/null)."""
    extra = [arg for header in (f"X-Auth-Token: {token}", *headers) for arg in ("-H", header)]
    out = subprocess.run(
        ["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download}", *extra, url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out)


def timed(size: int, action: Callable[[], int]) -> float:
    """MiB/s of one download, checked for its length."""
    start = time.perf_counter()
    got = action()
    seconds = time.perf_counter() - start
    if got != size:
        raise SystemExit(f"downloaded {got} bytes, expected {size}")
    return size / MiB / seconds


def upload(server: Server, token: str, source: Path) -> str:
    created = httpx.post(
        f"{server.url}/v2/images",
        json={"name": "bench-cache", "disk_format": "raw", "container_format": "bare"},
        headers={"X-Auth-Token": token},
    )
    created.raise_for_status()
    image_id: str = created.json()["id"]
    subprocess.run(
        ["curl", "-sS", "-f", "-T", str(source), "-X", "PUT", "-H", f"X-Auth-Token: {token}",
         "-H", "Content-Type: application/octet-stream", f"{server.url}/v2/images/{image_id}/file"],
        check=True,
    )  # fmt: skip
    return image_id


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--saio-dir", default=str(Path.home() / ".cache/spyglass/swift-saio"))
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()

    env, started = start_swift(args.saio_dir)
    work = Path(tempfile.mkdtemp(dir=args.dir, prefix="spyglass-bench-cache-"))
    container = unique_name("spyglass-bench-cache")
    source = work / "image.raw"
    generate(source, args.size_mib)
    size = source.stat().st_size
    (work / "spyglass.toml").write_text(config(env, container, 2 * size))
    server = start_server(work / "data", env={"SPYGLASS_CONFIG": str(work / "spyglass.toml")})
    try:
        clouds = yaml.safe_load(server.clouds_yaml.read_text())
        owner, admin = (token_for(server.url, clouds, cloud) for cloud in ("spyglass-a", "spyglass-admin"))
        image_id = upload(server, owner, source)
        url = f"{server.url}/v2/images/{image_id}/file"

        def cached_now() -> bool:
            listing = httpx.get(f"{server.url}/v2/cache", headers={"X-Auth-Token": admin}).json()
            return bool(listing["cached_images"])

        def clear() -> None:
            httpx.delete(f"{server.url}/v2/cache", headers={"X-Auth-Token": admin}).raise_for_status()

        ranged = "Swift, not cached (Range: bytes=0-)"
        whole = ("Swift, filling the cache (first download)", "cache (later downloads)")
        rows = dict.fromkeys((ranged, *whole), 0.0)
        # Round by round, so that a busy moment of this shared machine weighs on every row alike.
        for _ in range(args.repeat):
            clear()
            rows[ranged] = max(rows[ranged], timed(size, lambda: download(url, owner, "Range: bytes=0-")))
            if cached_now():
                raise SystemExit("a ranged download filled the cache")
            rows[whole[0]] = max(rows[whole[0]], timed(size, lambda: download(url, owner)))
            if not cached_now():
                raise SystemExit("the first whole download did not fill the cache")
            rows[whole[1]] = max(rows[whole[1]], timed(size, lambda: download(url, owner)))
        listing = httpx.get(f"{server.url}/v2/cache", headers={"X-Auth-Token": admin}).json()
        hits = listing["cached_images"][0]["hits"]
    finally:
        stop_server(server)
        purge_all(env, container)
        shutil.rmtree(work, ignore_errors=True)
        if started:
            subprocess.run(["bash", str(ROOT / "scripts/swift-saio.sh"), "stop", args.saio_dir], check=False)
    baseline = rows[ranged]
    print(f"image of {args.size_mib} MiB, best of {args.repeat} rounds; hits in the last round: {hits}")
    for label, rate in rows.items():
        print(f"{label:45s} {rate:8.0f} MiB/s  x{rate / baseline:.2f}")


def purge_all(env: dict[str, str], container: str) -> None:
    from swiftclient import Connection

    conn = Connection(authurl=env["ST_AUTH"], user=env["ST_USER"], key=env["ST_KEY"])
    for name in (container, container + "_segments"):
        purge(conn, name)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
