"""What sending a cached file costs inside the server, without the socket and the client: this
code's spyglass.api.local_file against `--old REV`'s, in the same run, alternating.

A file of `--size-mib` (in the page cache) is sent by LocalFileResponse on uvloop to an ASGI
`send` that keeps a view of each body's second half until the next body comes, as the server's
transport keeps the unsent tail of a partial write. Prints, for each side, the median CPU seconds
per GiB (process time) and the median wall rate, and the floor: preadv of the same file into one
reused 1 MiB buffer. bench/data_path.py --old times whole downloads over loopback; those include
the kernel's socket work and the client, and on a shared 2-core machine they are much noisier.

    .venv/bin/python bench/local_file_response.py --old a5f7bfe [--size-mib 1024] [--rounds 9]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spyglass.api import local_file  # noqa: E402

GIB = 1024**3


def module_at(rev: str, work: Path) -> ModuleType:
    """spyglass/api/local_file.py as it is at `rev`, imported under another name."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:spyglass/api/local_file.py"],
        check=True,
        capture_output=True,
    ).stdout
    path = work / "local_file_old.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("local_file_old", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Sink:
    """An ASGI `send` that holds the second half of each body until the next one."""

    def __init__(self) -> None:
        self.received = 0
        self.held: memoryview | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            body = message["body"]
            self.received += len(body)
            self.held = memoryview(body)[len(body) // 2 :]


async def never_disconnects() -> dict[str, Any]:
    await asyncio.sleep(3600)
    return {"type": "http.disconnect"}


async def send_once(module: ModuleType, path: Path, size: int) -> tuple[float, float]:
    """Wall and CPU seconds of one response of the whole file."""
    sink = Sink()
    response = module.LocalFileResponse(os.open(path, os.O_RDONLY), 0, size, 200, {})
    began, cpu = time.perf_counter(), time.process_time()
    await response({"type": "http", "method": "GET"}, never_disconnects, sink.send)
    wall, used = time.perf_counter() - began, time.process_time() - cpu
    if sink.received != size:
        raise RuntimeError(f"sent {sink.received} of {size} bytes")
    return wall, used


def preadv_floor(path: Path, rounds: int) -> float:
    """CPU seconds of reading the file with preadv into one reused buffer (the least a copy costs)."""
    buffer = bytearray(local_file.CHUNK)
    fd = os.open(path, os.O_RDONLY)
    try:
        size, best = os.fstat(fd).st_size, float("inf")
        for _ in range(rounds):
            cpu, position = time.process_time(), 0
            while position < size:
                position += os.preadv(fd, [buffer], position)
            best = min(best, time.process_time() - cpu)
        return best
    finally:
        os.close(fd)


async def compare(sides: dict[str, ModuleType], path: Path, size: int, rounds: int) -> None:
    results: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    for turn in range(rounds):
        order = list(sides) if turn % 2 == 0 else list(reversed(sides))
        for side in order:
            results[side].append(await send_once(sides[side], path, size))
    gib = size / GIB
    for side, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{side:4} CPU {cpu / gib:.3f} s/GiB   wall {size / wall / 1e6:6.0f} MB/s", flush=True)
    new, old = (statistics.median(c for _, c in results[side]) for side in ("new", "old"))
    print(f"CPU old/new {old / new:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", required=True, metavar="REV")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="spyglass-bench-") as directory:
        work = Path(directory)
        path = work / "image.raw"
        block = os.urandom(local_file.CHUNK)
        with path.open("wb") as handle:
            for _ in range(args.size_mib):
                handle.write(block)
        size = path.stat().st_size
        floor = preadv_floor(path, 3)
        print(f"floor: preadv into one reused buffer, CPU {floor / (size / GIB):.3f} s/GiB", flush=True)
        sides = {"new": local_file, "old": module_at(args.old, work)}
        uvloop.run(compare(sides, path, size, args.rounds))


if __name__ == "__main__":
    main()
