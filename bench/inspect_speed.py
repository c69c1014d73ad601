"""Format inspection throughput next to md5 over the same data, in 4 MiB chunks as an upload reads.

Generates a raw file (default 1 GiB) and converts it to qcow2 with qemu-img, then prints MB/s
(best of 5 interleaved rounds) for: a plain read, md5, the inspector alone, and md5 with the
inspector in the same pass (what an upload does). Files are read once beforehand so the page
cache serves every pass. Numbers only.

    .venv/bin/python bench/inspect_speed.py [--size-mib 1024] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spyglass.inspect import FormatInspector  # noqa: E402

CHUNK = 4 * 1024 * 1024


def generate(path: Path, size_mib: int) -> None:
    block = os.urandom(CHUNK)
    with path.open("wb") as handle:
        for i in range(size_mib * 1024 * 1024 // CHUNK):
            handle.write(i.to_bytes(8, "little") + block[8:])


def chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def read_only(path: Path) -> None:
    for _ in chunks(path):
        pass


def md5_only(path: Path) -> None:
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in chunks(path):
        digest.update(chunk)


def inspect_only(path: Path) -> None:
    inspector = FormatInspector()
    for chunk in chunks(path):
        inspector.feed(chunk)
    inspector.finish(path.stat().st_size)


def md5_and_inspect(path: Path) -> None:
    digest, inspector = hashlib.md5(usedforsecurity=False), FormatInspector()
    for chunk in chunks(path):
        digest.update(chunk)
        inspector.feed(chunk)
    inspector.finish(path.stat().st_size)


PASSES: dict[str, Callable[[Path], None]] = {
    "read": read_only,
    "md5": md5_only,
    "inspect": inspect_only,
    "md5 + inspect": md5_and_inspect,
}


def measure(path: Path) -> None:
    read_only(path)  # warm the page cache
    megabytes = path.stat().st_size / 1e6
    detected = FormatInspector()
    for chunk in chunks(path):
        detected.feed(chunk)
    print(f"\n{path.name}: {megabytes:.0f} MB, {detected.finish(path.stat().st_size)}")
    # Rounds interleave the passes so that drift in machine load hits them all alike.
    best = dict.fromkeys(PASSES, float("inf"))
    for _ in range(5):
        for name, action in PASSES.items():
            best[name] = min(best[name], _timed(action, path))
    for name, seconds in best.items():
        print(f"  {name:<14} {megabytes / seconds:>9.0f} MB/s")


def _timed(action: Callable[[Path], None], path: Path) -> float:
    began = time.perf_counter()
    action(path)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--dir", default=None, help="where to write the generated files")
    args = parser.parse_args()
    qemu_img = shutil.which("qemu-img")
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        raw, qcow2 = Path(directory) / "disk.raw", Path(directory) / "disk.qcow2"
        generate(raw, args.size_mib)
        measure(raw)
        if qemu_img is None:
            print("\nqemu-img not found (scripts/ensure-qemu-img.sh installs it): qcow2 skipped")
            return
        subprocess.run([qemu_img, "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)], check=True)
        raw.unlink()
        measure(qcow2)


if __name__ == "__main__":
    main()
