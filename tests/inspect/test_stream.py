"""The streaming contract: any chunk types and sizes, bounded memory, cheap chunks, sticky errors."""

from __future__ import annotations

import array
import time
import tracemalloc

import pytest

from spyglass.inspect import FormatInspector, InspectionError
from spyglass.inspect.model import TAIL_SIZE
from tests.inspect.helpers import MIB, ImageFactory, inspect_bytes


def test_accepts_bytes_bytearray_and_memoryviews(images: ImageFactory) -> None:
    data = images.create("qcow2", MIB).read_bytes()
    inspector = FormatInspector()
    inspector.feed(data[:100])
    inspector.feed(bytearray(data[100:300]))
    inspector.feed(memoryview(data)[300:1000])
    words = array.array("I", data[1000:1400])  # a memoryview of 4-byte items
    inspector.feed(memoryview(words))
    inspector.feed(data[1400:])
    assert inspector.finish(len(data)).virtual_size == MIB


def test_one_byte_chunks(images: ImageFactory) -> None:
    data = images.create("vpc", MIB).read_bytes()
    assert inspect_bytes(data, cuts=range(len(data))) == inspect_bytes(data)


def test_finish_needs_the_number_of_bytes_fed() -> None:
    inspector = FormatInspector()
    inspector.feed(b"abc")
    with pytest.raises(ValueError, match="after 3 bytes"):
        inspector.finish(4)


def test_errors_are_sticky(images: ImageFactory) -> None:
    data = bytearray(images.create("qcow2", MIB).read_bytes())
    data[20:24] = (30).to_bytes(4, "big")  # cluster_bits 30
    inspector = FormatInspector()
    with pytest.raises(InspectionError, match="cluster_bits is 30") as first:
        inspector.feed(bytes(data[:4096]))
    with pytest.raises(InspectionError) as again:
        inspector.feed(b"more")
    assert again.value is first.value
    with pytest.raises(InspectionError):
        inspector.finish(4100)


def test_invalid_header_is_reported_as_soon_as_it_is_read(images: ImageFactory) -> None:
    data = bytearray(images.create("vdi", MIB).read_bytes())
    data[360:364] = (4096).to_bytes(4, "little")
    inspector = FormatInspector()
    inspector.feed(bytes(data[:511]))
    with pytest.raises(InspectionError, match="sector size 4096"):
        inspector.feed(bytes(data[511:512]))


def test_retained_memory_stays_small_over_a_large_stream() -> None:
    inspector = FormatInspector()
    chunk = memoryview(bytes(MIB))
    for _ in range(256):
        inspector.feed(chunk)
        assert inspector.retained_bytes() <= TAIL_SIZE
    assert inspector.finish(256 * MIB).virtual_size == 256 * MIB


def test_peak_allocation_is_bounded_whatever_the_size() -> None:
    chunk = memoryview(bytes(4 * MIB))
    tracemalloc.start()
    try:
        inspector = FormatInspector()
        for _ in range(128):  # 512 MiB
            inspector.feed(chunk)
        inspector.finish(128 * 4 * MIB)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024


def test_chunks_after_the_headers_are_cheap() -> None:
    chunk = memoryview(bytes(4 * MIB))
    inspector = FormatInspector()
    inspector.feed(chunk)  # the headers
    began = time.perf_counter()
    for _ in range(2560):  # 10 GiB
        inspector.feed(chunk)
    elapsed = time.perf_counter() - began
    assert elapsed < 1.0, f"{elapsed:.3f}s for 2560 chunks"
