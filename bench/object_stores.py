"""Upload and download throughput of the Swift and S3 blob stores, next to plain clients, in one run.

Starts (or reuses) the one-node Swift of scripts/swift-saio.sh, writes a file of --size-mib
(default 1024), then times, in MiB/s:
  - SwiftStore writer (4 MiB writes, as spyglass.ingest sends them) and SwiftStore.read,
  - python-swiftclient put_object / get_object of the same file as one object,
  - S3Store writer and S3Store.read (through Swift's s3api),
  - boto3 put_object / get_object of the same file as one object.
Each download is checked for length and for its first and last MiB. Numbers only; nothing is
asserted. Client and servers share this machine's cores, so the numbers are relative.

    .venv/bin/python bench/object_stores.py [--size-mib 1024] [--repeat 1] [--saio-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import boto3
from swiftclient import Connection

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spyglass.blobs.s3 import S3Config, S3Store  # noqa: E402
from spyglass.blobs.swift import SwiftConfig, SwiftStore  # noqa: E402

MiB = 1024 * 1024
WRITE_CHUNK = 4 * MiB
READ_CHUNK = MiB


def start_swift(directory: str) -> tuple[dict[str, str], bool]:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/swift-saio.sh"), "start", directory],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    env: dict[str, str] = {}
    for line in out.splitlines():
        words = shlex.split(line)
        if words[:1] == ["export"]:
            env.update(word.split("=", 1) for word in words[1:])
    return env, env.get("SWIFT_SAIO_STARTED") == "1"


def generate(path: Path, size_mib: int) -> None:
    block = os.urandom(8 * MiB)
    with path.open("wb") as handle:
        for i in range(size_mib // 8):
            handle.write(i.to_bytes(8, "little") + block[8:])  # no two blocks alike


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(WRITE_CHUNK):
            yield chunk


def drain(chunks: Iterable[bytes], path: Path) -> None:
    size, first = 0, b""
    tail: deque[bytes] = deque()  # the last chunks, at least one MiB of them
    tail_size = 0
    for chunk in chunks:
        if len(first) < MiB:
            first += chunk[: MiB - len(first)]
        tail.append(chunk)
        tail_size += len(chunk)
        while tail_size - len(tail[0]) >= MiB:
            tail_size -= len(tail.popleft())
        size += len(chunk)
    last = b"".join(tail)[-MiB:]
    with path.open("rb") as handle:
        expected_first = handle.read(MiB)
        handle.seek(-MiB, os.SEEK_END)
        expected_last = handle.read()
    if (size, first, last) != (path.stat().st_size, expected_first, expected_last):
        raise SystemExit(f"download of {path} came back different ({size} bytes)")


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def store_upload(store: SwiftStore | S3Store, key: str, path: Path) -> None:
    writer = store.writer(key)
    for chunk in file_chunks(path):
        writer.write(chunk)
    writer.commit()


def run(env: dict[str, str], path: Path, repeat: int) -> list[tuple[str, float, float]]:
    tag = uuid.uuid4().hex[:8]
    swift_store = SwiftStore(
        SwiftConfig(container=f"bench-{tag}", auth_url=env["ST_AUTH"], user=env["ST_USER"], key=env["ST_KEY"])
    )
    s3_store = S3Store(
        S3Config(
            bucket=f"bench-s3-{tag}",
            endpoint_url=env["S3_ENDPOINT_URL"],
            region=env["S3_REGION"],
            access_key=env["S3_ACCESS_KEY_ID"],
            secret_key=env["S3_SECRET_ACCESS_KEY"],
            path_style=True,
        )
    )
    swift = Connection(authurl=env["ST_AUTH"], user=env["ST_USER"], key=env["ST_KEY"])
    swift.put_container(f"bench-direct-{tag}")
    s3: Any = boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        region_name=env["S3_REGION"],
        aws_access_key_id=env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["S3_SECRET_ACCESS_KEY"],
    )
    s3.create_bucket(Bucket=f"bench-direct-s3-{tag}")
    size = path.stat().st_size

    swift_direct, s3_direct = f"bench-direct-{tag}", f"bench-direct-s3-{tag}"

    def swift_put() -> None:
        with path.open("rb") as handle:
            swift.put_object(swift_direct, "blob", contents=handle, content_length=size)

    def swift_get() -> None:
        drain(swift.get_object(swift_direct, "blob", resp_chunk_size=READ_CHUNK)[1], path)

    def boto_put() -> None:
        with path.open("rb") as handle:
            s3.put_object(Bucket=s3_direct, Key="blob", Body=handle)

    def boto_get() -> None:
        drain(s3.get_object(Bucket=s3_direct, Key="blob")["Body"].iter_chunks(READ_CHUNK), path)

    Case = tuple[str, Callable[[], object], Callable[[], object], Callable[[], object]]
    cases: list[Case] = [
        ("SwiftStore (SLO, 200 MiB segments)", lambda: store_upload(swift_store, "blob", path),
         lambda: drain(swift_store.read("blob"), path), lambda: swift_store.delete("blob")),
        ("swiftclient put_object/get_object", swift_put, swift_get,
         lambda: swift.delete_object(swift_direct, "blob")),
        ("S3Store (multipart, 64 MiB parts)", lambda: store_upload(s3_store, "blob", path),
         lambda: drain(s3_store.read("blob"), path), lambda: s3_store.delete("blob")),
        ("boto3 put_object/get_object", boto_put, boto_get,
         lambda: s3.delete_object(Bucket=s3_direct, Key="blob")),
    ]  # fmt: skip
    results = []
    try:
        for _ in range(repeat):  # round robin, so that no path always runs first
            for name, put, get, remove in cases:
                up, down = timed(put), timed(get)
                remove()
                results.append((name, size / MiB / up, size / MiB / down))
                print(f"  {name}: {results[-1][1]:.0f} / {results[-1][2]:.0f} MiB/s", file=sys.stderr)
    finally:
        for container in (
            f"bench-{tag}",
            f"bench-{tag}_segments",
            swift_direct,
            f"bench-s3-{tag}",
            f"bench-s3-{tag}+segments",
            s3_direct,
        ):
            try:
                swift.delete_container(container)
            except Exception as exc:  # the bench's own leftovers: report, do not hide
                print(f"  could not delete container {container}: {exc}", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--saio-dir",
        default=os.environ.get("SPYGLASS_SWIFT_SAIO_DIR") or str(Path.home() / ".cache/spyglass/swift-saio"),
    )
    parser.add_argument("--dir", default=None, help="where to write the test file (default: a temp dir)")
    args = parser.parse_args()
    env, started = start_swift(args.saio_dir)
    try:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            path = Path(tmp) / "data"
            generate(path, args.size_mib)
            print(f"{args.size_mib} MiB, Swift at {env['S3_ENDPOINT_URL']}", file=sys.stderr)
            results = run(env, path, args.repeat)
    finally:
        if started:
            subprocess.run(["bash", str(ROOT / "scripts/swift-saio.sh"), "stop", args.saio_dir], check=False)
    print(f"{'path':<40} {'upload MiB/s':>13} {'download MiB/s':>15}")
    order = list(dict.fromkeys(name for name, _, _ in results))
    for name, up, down in sorted(results, key=lambda row: order.index(row[0])):
        print(f"{name:<40} {up:>13.0f} {down:>15.0f}")


if __name__ == "__main__":
    main()
