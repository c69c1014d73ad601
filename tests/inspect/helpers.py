"""Helpers for the inspection tests: making images with qemu-img, feeding data in odd chunkings."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import struct
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

from spyglass.inspect import Detected, FormatInspector

MIB = 1024 * 1024
GIB = 1024 * MIB
# The most the inspector may hold: the largest region (a VMDK descriptor window) and the tail.
MAX_RETAINED = MIB + 3 * 512


class ImageFactory:
    """Makes images in a session directory, each at most once."""

    def __init__(self, qemu_img: str, directory: Path) -> None:
        self.qemu_img = qemu_img
        self.directory = directory

    def create(self, fmt: str, size: int, *options: str, backing: tuple[str, ...] = ()) -> Path:
        path = self._path(fmt, "create", str(size), *options, *backing)
        if not path.exists():
            option_args = ["-o", ",".join(options)] if options else []
            self.run("create", "-q", "-f", fmt, *option_args, *backing, str(path), str(size))
        return path

    def convert(self, source: Path, fmt: str, *options: str) -> Path:
        path = self._path(fmt, "convert", source.name, *options)
        if not path.exists():
            option_args = ["-o", ",".join(options)] if options else []
            self.run("convert", "-q", "-f", "raw", "-O", fmt, *option_args, str(source), str(path))
        return path

    def data(self, size: int, seed: int = 0) -> Path:
        """A raw file of reproducible random bytes with runs of zeros (so conversions stay small)."""
        path = self.directory / f"data-{size}-{seed}.raw"
        if not path.exists():
            rng = random.Random(seed)
            with path.open("wb") as handle:
                for offset in range(0, size, 65536):
                    block = min(65536, size - offset)
                    handle.write(rng.randbytes(block) if rng.random() < 0.5 else bytes(block))
        return path

    def info(self, path: Path, fmt: str | None = None) -> dict[str, object]:
        args = ["info", "--output=json", *(["-f", fmt] if fmt else []), str(path)]
        result = self.run(*args)
        info: dict[str, object] = json.loads(result)
        return info

    def virtual_size(self, path: Path, fmt: str | None = None) -> int:
        size = self.info(path, fmt)["virtual-size"]
        assert isinstance(size, int)
        return size

    def run(self, *args: str) -> str:
        result = subprocess.run([self.qemu_img, *args], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"qemu-img {' '.join(args)}: {result.stderr}"
        return result.stdout

    def copy(self, path: Path, name: str) -> Path:
        target = self.directory / name
        shutil.copyfile(path, target)
        return target

    def _path(self, fmt: str, *recipe: str) -> Path:
        digest = hashlib.sha1("\0".join(recipe).encode()).hexdigest()[:16]
        return self.directory / f"{fmt}-{digest}.img"


def chunk_sizes(rng: random.Random, total: int) -> Iterator[int]:
    """Small, odd chunks over the first MiB (where headers are), then big ones of varying size."""
    position = 0
    while position < total:
        if position < MIB:
            size = rng.choice([1, 2, 3, 7, 511, 512, 513, 4095, rng.randint(1, 70000)])
        else:
            size = rng.randint(64 * 1024, 8 * MIB)
        yield size
        position += size


def inspect_file(path: Path, seed: int = 0) -> Detected:
    rng = random.Random(seed)
    inspector = FormatInspector()
    total = path.stat().st_size
    with path.open("rb") as handle:
        for size in chunk_sizes(rng, total):
            inspector.feed(handle.read(size))
            assert inspector.retained_bytes() <= MAX_RETAINED
    return inspector.finish(total)


def inspect_bytes(data: bytes, cuts: Iterable[int] = ()) -> Detected:
    """Feed `data` cut at the given offsets (in any order; out-of-range ones are ignored)."""
    inspector = FormatInspector()
    view = memoryview(data)
    start = 0
    for cut in [*sorted({c for c in cuts if 0 < c < len(data)}), len(data)]:
        inspector.feed(view[start:cut])
        assert inspector.retained_bytes() <= MAX_RETAINED
        start = cut
    return inspector.finish(len(data))


def patched(data: bytes, offset: int, fmt: str, *values: int | bytes) -> bytes:
    """`data` with `struct.pack(fmt, *values)` written at `offset`."""
    packed = struct.pack(fmt, *values)
    return data[:offset] + packed + data[offset + len(packed) :]
