"""spyglass.data.ingest.pump: every consumer sees every byte once, in order, whatever the chunking, through
a fixed set of reused buffers; errors surface only once no consumer still works on a buffer."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spyglass.data import ingest
from spyglass.errors import TooLarge

BUFFER = ingest.BUFFER_SIZE


async def _chunks(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    position, index = 0, 0
    while position < len(data):
        size = sizes[index % len(sizes)] if sizes else len(data)
        yield data[position : position + size]
        position, index = position + size, index + 1


def run(data: bytes, sizes: list[int], consumers: list[ingest.Consumer], cap: int = 1 << 40) -> int:
    return asyncio.run(ingest.pump(_chunks(data, sizes), consumers, cap))


@settings(max_examples=25, deadline=None)
@given(
    length=st.sampled_from([0, 1, BUFFER - 1, BUFFER, BUFFER + 1, 2 * BUFFER, 3 * BUFFER + 12345]),
    sizes=st.lists(st.integers(min_value=1, max_value=3 * BUFFER), max_size=5),
)
def test_consumers_see_the_data_in_order(length: int, sizes: list[int]) -> None:
    data = bytes(range(256)) * (length // 256) + bytes(length % 256)
    copied = bytearray()
    digest = hashlib.sha256()
    assert run(data, sizes, [copied.extend, digest.update]) == length
    assert copied == data
    assert digest.digest() == hashlib.sha256(data).digest()


def test_buffers_are_reused() -> None:
    seen: set[int] = set()

    def remember(view: memoryview) -> None:
        seen.add(id(view.obj))

    run(bytes(17 * BUFFER + 5), [65536], [remember])
    assert len(seen) == ingest.BUFFER_COUNT


def test_consumers_run_concurrently_in_threads() -> None:
    barrier = threading.Barrier(2, timeout=10)

    def wait(_view: memoryview) -> None:
        barrier.wait()

    # Both consumers of a buffer must be inside at the same time, or the barrier breaks.
    run(bytes(3 * BUFFER), [BUFFER], [wait, wait])


def test_a_failing_consumer_stops_the_transfer_once_no_consumer_is_running() -> None:
    started, finished = [], []

    def fail(_view: memoryview) -> None:
        raise OSError("disk on fire")

    def slow(view: memoryview) -> None:
        started.append(len(view))
        threading.Event().wait(0.05)
        finished.append(len(view))

    with pytest.raises(OSError, match="disk on fire"):
        run(bytes(5 * ingest.BUFFER_COUNT * BUFFER), [BUFFER], [fail, slow])
    # The error surfaced only after the other consumer was done, and nothing runs on afterwards.
    assert started == finished
    threading.Event().wait(0.1)
    assert started == finished and len(finished) <= ingest.BUFFER_COUNT


def test_size_cap() -> None:
    with pytest.raises(TooLarge):
        run(bytes(BUFFER * 2), [1000], [lambda _view: None], cap=BUFFER + 10)


def test_refusal_stops_the_transfer() -> None:
    fed = []

    async def go() -> None:
        refusal: list[Exception] = []

        def consume(view: memoryview) -> None:
            fed.append(len(view))
            refusal.append(ValueError("refused"))

        await ingest.pump(
            _chunks(bytes(4 * ingest.BUFFER_COUNT * BUFFER), [BUFFER]),
            [consume],
            1 << 40,
            lambda: next(iter(refusal), None),
        )

    with pytest.raises(ValueError, match="refused"):
        asyncio.run(go())
    # Asked before each buffer is handed on: at most the buffers already in flight are consumed.
    assert 1 <= len(fed) <= ingest.BUFFER_COUNT
