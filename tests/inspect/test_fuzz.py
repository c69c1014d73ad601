"""Property-based fuzzing of every inspector with hypothesis.

Random bytes behind each signature, and real images with bytes overwritten at the places that
hold structure (and boundary integers written there), cut into random chunks: inspection and the
policy raise nothing but `InspectionError`, memory stays bounded after every chunk, each example
finishes within the deadline, and the outcome does not depend on the chunking.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spyglass.inspect import Detected, InspectionError, check, virtual_size
from spyglass.inspect.detect import SIGNATURES
from tests.inspect import crafting
from tests.inspect.helpers import MIB, ImageFactory, inspect_bytes

FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
DECLARATIONS = ("raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso", "ami", None)
BOUNDARY_INTEGERS = (0, 1, 7, 511, 512, 0xFFFF, 0x100000, 2**31, 2**32 - 1, 2**63, 2**64 - 1)


@dataclass(frozen=True)
class Seed:
    data: bytes
    spots: tuple[int, ...]  # offsets of structure: where the seed's bytes are not zero


def _seed(data: bytes) -> Seed:
    nonzero = [i for i, byte in enumerate(data[: 16 * MIB]) if byte] or [0]
    step = max(1, len(nonzero) // 4096)
    return Seed(data, tuple(nonzero[::step]) + tuple(range(0, 600, 8)))


SEED_RECIPES: dict[str, Callable[[ImageFactory], bytes]] = {
    "qcow2-v2": lambda images: images.create("qcow2", MIB, "compat=0.10").read_bytes(),
    "qcow2-v3": lambda images: images.create("qcow2", MIB, "extended_l2=on").read_bytes(),
    "qcow2-backing": lambda images: images.create(
        "qcow2", MIB, backing=("-b", str(images.create("raw", 4096)), "-F", "raw")
    ).read_bytes(),
    "vmdk-monolithicSparse": lambda images: images.create("vmdk", MIB).read_bytes(),
    "vmdk-footer": lambda images: crafting.with_vmdk_footer(
        images.convert(images.data(MIB), "vmdk", "subformat=streamOptimized").read_bytes()
    ),
    "vmdk-descriptor": lambda images: (
        b'# Disk DescriptorFile\nversion=1\ncreateType="vmfs"\nRW 8 VMFS "/dev/x"\n'
    ),
    "vhd-dynamic": lambda images: images.create("vpc", 4 * MIB).read_bytes(),
    "vhd-fixed": lambda images: images.create("vpc", MIB // 2, "subformat=fixed").read_bytes(),
    "vhdx": lambda images: images.create("vhdx", MIB).read_bytes(),
    "vdi": lambda images: images.create("vdi", 4 * MIB).read_bytes(),
    "iso": lambda images: _iso(images.directory),
    "gpt": lambda images: _gpt_disk(),
}


def _iso(directory: Path) -> bytes:
    path = directory / "fuzz.iso"
    if not path.exists():
        (directory / "iso-content").mkdir(exist_ok=True)
        (directory / "iso-content" / "a.txt").write_text("a\n")
        args = ["xorriso", "-as", "mkisofs", "-quiet", "-o", str(path), str(directory / "iso-content")]
        subprocess.run(args, check=True, capture_output=True)
    return path.read_bytes()


def _gpt_disk() -> bytes:
    disk = bytearray(64 * 1024)
    disk[446:462] = bytes([0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0, 0x7F, 0, 0, 0])
    disk[510:512] = b"\x55\xaa"
    disk[512:520] = b"EFI PART"
    return bytes(disk)


@pytest.fixture(scope="session")
def seeds(images: ImageFactory) -> Callable[[str], Seed]:
    @cache
    def seed(name: str) -> Seed:
        return _seed(SEED_RECIPES[name](images))

    return seed


@st.composite
def mutated(draw: st.DrawFn, seed: Seed) -> tuple[bytes, list[int]]:
    data = bytearray(seed.data)
    spot = st.builds(lambda base, delta: base + delta, st.sampled_from(seed.spots), st.integers(-8, 8))
    for position in draw(st.lists(spot, max_size=6)):
        if 0 <= position < len(data):
            data[position] = draw(st.integers(0, 255))
    for position in draw(st.lists(spot, max_size=2)):
        width = draw(st.sampled_from([4, 8]))
        order: Literal["little", "big"] = draw(st.sampled_from(["little", "big"]))
        value = draw(st.sampled_from(BOUNDARY_INTEGERS)) % (1 << (8 * width))
        if 0 <= position <= len(data) - width:
            data[position : position + width] = value.to_bytes(width, order)
    if draw(st.integers(0, 4)) == 0:
        del data[max(0, draw(spot)) :]
    return bytes(data), draw(st.lists(spot, max_size=40))


def outcome(data: bytes, cuts: list[int]) -> Detected | str:
    """What inspection says about `data`, fed cut at `cuts`; also runs the policy on it."""
    try:
        detected = inspect_bytes(data, cuts)
    except InspectionError as error:
        assert error.message
        return error.message
    assert detected.size == len(data)
    assert detected.virtual_size is None or detected.virtual_size >= 0
    for declared in DECLARATIONS:
        try:
            check(declared, detected)
        except InspectionError as error:
            assert error.message
        stored = virtual_size(declared, detected)
        assert stored is None or stored >= 0
    return detected


@pytest.mark.parametrize("name", SEED_RECIPES)
@FUZZ
@given(data=st.data())
def test_mutated_images(seeds: Callable[[str], Seed], name: str, data: st.DataObject) -> None:
    image, cuts = data.draw(mutated(seeds(name)))
    assert outcome(image, cuts) == outcome(image, [])


MAGICS = [magic.rjust(offset + len(magic), b"\0") for offset, magic, _parser in SIGNATURES]


@settings(max_examples=500, deadline=2000)
@given(
    prefix=st.sampled_from([b"", *MAGICS, b"# Disk DescriptorFile\nversion=1\n"]),
    body=st.binary(max_size=70000),
    cut_seed=st.integers(0, 2**32),
)
def test_random_bytes_behind_each_signature(prefix: bytes, body: bytes, cut_seed: int) -> None:
    data = prefix + body
    rng = random.Random(cut_seed)
    cuts = [rng.randint(0, len(data)) for _ in range(rng.randint(0, 30))]
    assert outcome(data, cuts) == outcome(data, [])


@settings(max_examples=300, deadline=2000)
@given(
    header=st.lists(st.sampled_from(BOUNDARY_INTEGERS), min_size=14, max_size=14),
    version=st.integers(0, 4),
    tail=st.binary(max_size=600),
)
def test_qcow2_headers_from_boundary_values(header: list[int], version: int, tail: bytes) -> None:
    fields = [value % 2**64 for value in header]
    data = b"QFI\xfb" + version.to_bytes(4, "big")
    data += b"".join((value % 2**32).to_bytes(4, "big") for value in fields[:6])
    data += b"".join(value.to_bytes(8, "big") for value in fields[6:])
    assert outcome(data + tail, [5, 80]) == outcome(data + tail, [])
