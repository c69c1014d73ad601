"""One pass over incoming image data: into a blob, hashed and inspected on the way.

Every byte of an upload (`PUT /file`), a stage (`PUT /stage`) and a web-download goes through
`receive` exactly once. The event loop copies the body into a small ring of buffers that is
reused for the whole transfer. Each consumer of the data runs in its own thread and works through
the filled buffers in order, at its own pace: md5 (`checksum`), the multihash (`os_hash_value`),
sha256 when the image declares `owner_specified.openstack.sha256`, the image signature's hash when
the image is signed (spyglass.data.signatures), the disk format inspector, and the blob writer.
hashlib and file writes release the GIL, so on two cores the hashes run side by side while the
disk writes; a consumer that is briefly slower (a disk flush, say) does not stall the others until
the ring is full. Memory per transfer is the ring (BUFFER_COUNT x BUFFER_SIZE)
plus what the inspector holds (about 1 MiB at most), whatever the size.

Nothing is kept unless every check passed: the size cap, the announced length, the signature, the
digests the client declared, and the format inspection (spyglass.inspect.check against the declared
disk_format). Otherwise the blob is aborted and the caller gets the domain error.

A blob writer must not keep the memoryview it is given once `write` returns: the buffer is reused.
The buffers are page-aligned, so a writer may hand them to the disk with O_DIRECT as they are.
"""

from __future__ import annotations

import asyncio
import hashlib
import mmap
import queue
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from anyio import to_thread

from spyglass.blobs import BlobStore, BlobStoreFull
from spyglass.data.signatures import SignatureCheck
from spyglass.errors import Invalid, TooLarge
from spyglass.images.queries import ImageRecord
from spyglass.inspect import Detected, FormatInspector, InspectionError, check, virtual_size
from spyglass.settings import Settings

BUFFER_SIZE = 4 * 1024 * 1024
# Buffers in flight per transfer: enough for the disk and the hashes to run at their own pace
# through each other's hiccups, within the memory a transfer may use.
BUFFER_COUNT = 6
DECLARED_MD5 = "owner_specified.openstack.md5"
DECLARED_SHA256 = "owner_specified.openstack.sha256"

Consumer = Callable[[memoryview], Any]


@dataclass(frozen=True)
class Expectations:
    """What the incoming data must satisfy, from the image record, the settings and the request."""

    disk_format: str | None
    size_cap: int
    algorithm: str
    inspect: bool
    length: int | None = None
    md5: str | None = None
    sha256: str | None = None
    # The image's signature (spyglass.data.signatures), when it carries one.
    signature: SignatureCheck | None = None

    @classmethod
    def of(
        cls,
        record: ImageRecord,
        settings: Settings,
        length: int | None,
        signature: SignatureCheck | None = None,
    ) -> Expectations:
        if length is not None and length > settings.image_size_cap:
            raise TooLarge(
                f"Image exceeds the storage quota: {length} bytes > {settings.image_size_cap} bytes."
            )
        return cls(
            disk_format=record.disk_format,
            size_cap=settings.image_size_cap,
            algorithm=settings.hashing_algorithm,
            inspect=settings.disk_format_inspection,
            length=length,
            md5=(record.properties.get(DECLARED_MD5) or "").lower() or None,
            sha256=(record.properties.get(DECLARED_SHA256) or "").lower() or None,
            signature=signature,
        )


@dataclass(frozen=True)
class Digest:
    size: int
    checksum: str
    os_hash_algo: str
    os_hash_value: str
    virtual_size: int | None

    def columns(self) -> dict[str, Any]:
        """The image columns this data sets."""
        return {
            "size": self.size,
            "checksum": self.checksum,
            "os_hash_algo": self.os_hash_algo,
            "os_hash_value": self.os_hash_value,
            "virtual_size": self.virtual_size,
        }


class _Consumers:
    """The hashes and the inspector one transfer feeds."""

    def __init__(self, expect: Expectations) -> None:
        self.expect = expect
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.multi = hashlib.new(expect.algorithm)
        self.sha256 = hashlib.sha256() if expect.sha256 and expect.algorithm != "sha256" else None
        self.inspector = FormatInspector() if expect.inspect else None
        self.signed = self._signature_hasher(expect.signature)
        self.refusal: InspectionError | None = None

    def all(self, write: Consumer) -> list[Consumer]:
        consumers: list[Consumer] = [self.md5.update, self.multi.update, write]
        if self.sha256 is not None:
            consumers.append(self.sha256.update)
        if self.inspector is not None:
            consumers.append(self._inspect)
        if self.signed is not None and self.signed not in (self.multi, self.sha256):
            consumers.append(self.signed.update)
        return consumers

    def _signature_hasher(self, signature: SignatureCheck | None) -> hashlib._Hash | None:
        """The hash the signature is checked against: the multihash (or the declared sha256's) when
        it is the same algorithm, as SHA-512 is with the default sha512, so the data is hashed once."""
        if signature is None:
            return None
        if signature.algorithm.name == self.expect.algorithm:
            return self.multi
        if signature.algorithm.name == "sha256" and self.sha256 is not None:
            return self.sha256
        return signature.hasher()

    def _inspect(self, data: memoryview) -> None:
        assert self.inspector is not None
        try:
            self.inspector.feed(data)
        except InspectionError as refusal:
            self.refusal = refusal

    def digest(self, size: int) -> Digest:
        """Check everything the data must satisfy and return its digest."""
        expect = self.expect
        if expect.length is not None and size != expect.length:
            raise Invalid(f"Received {size} bytes but Content-Length announced {expect.length}.")
        if expect.signature is not None and self.signed is not None:
            expect.signature.verify(self.signed)
        checksum = self.md5.hexdigest()
        _check_declared("md5", expect.md5, checksum)
        sha256 = self.sha256 or (self.multi if expect.algorithm == "sha256" else None)
        if sha256 is not None:
            _check_declared("sha256", expect.sha256, sha256.hexdigest())
        detected = self._detect(size)
        virtual = virtual_size(expect.disk_format, detected) if detected else None
        return Digest(size, checksum, expect.algorithm, self.multi.hexdigest(), virtual)

    def _detect(self, size: int) -> Detected | None:
        if self.inspector is None:
            return None
        if self.refusal is not None:
            raise self.refusal
        detected = self.inspector.finish(size)
        check(self.expect.disk_format, detected)
        return detected


def _check_declared(name: str, declared: str | None, actual: str) -> None:
    if declared and declared != actual:
        raise Invalid(
            f"The uploaded data has {name} {actual}, but the image declares "
            f"owner_specified.openstack.{name}={declared}; the upload was discarded."
        )


async def receive(store: BlobStore, key: str, body: AsyncIterator[bytes], expect: Expectations) -> Digest:
    """Stream the body into a new blob and commit it once every check passed; abort it otherwise."""
    writer = await to_thread.run_sync(store.writer, key)
    try:
        consumers = _Consumers(expect)
        size = await pump(body, consumers.all(writer.write), expect.size_cap, lambda: consumers.refusal)
        digest = consumers.digest(size)
        await to_thread.run_sync(writer.commit)
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await to_thread.run_sync(writer.abort)
        if isinstance(exc, BlobStoreFull):
            raise TooLarge("Image storage media is full.") from exc
        raise
    return digest


async def pump(
    body: AsyncIterator[bytes],
    consumers: Sequence[Consumer],
    size_cap: int,
    refusal: Callable[[], Exception | None] = lambda: None,
) -> int:
    """Feed the whole body to every consumer, buffer by buffer; return its size.

    Each consumer works through the filled buffers in its own thread and at its own pace; a buffer
    is refilled once every consumer is done with it. The event loop fills buffers while any is free
    and stops reading the body (back-pressure on the client) while none is. `refusal` is asked
    before each buffer is handed on: once it returns an error the transfer stops with it.
    """
    loop = asyncio.get_running_loop()
    free: asyncio.Queue[int] = asyncio.Queue()
    ring = _Ring(loop, free, len(consumers))
    for index in range(BUFFER_COUNT):
        free.put_nowait(index)
    lanes = [_Lane(consume, ring, loop) for consume in consumers]
    size, fill = 0, 0
    current = await free.get()
    try:
        async for chunk in body:
            size += len(chunk)
            if size > size_cap:
                raise TooLarge(f"Image exceeds the storage quota of {size_cap} bytes.")
            view = memoryview(chunk)
            while view:
                taken = min(len(view), BUFFER_SIZE - fill)
                ring.buffers[current][fill : fill + taken] = view[:taken]
                fill, view = fill + taken, view[taken:]
                if fill == BUFFER_SIZE:
                    _hand_on(ring, lanes, refusal, current, fill)
                    current, fill = await free.get(), 0
        if fill:
            _hand_on(ring, lanes, refusal, current, fill)
        await _finish(lanes)
    except BaseException:
        # Never leave a consumer running on a blob the caller is about to abort.
        with anyio.CancelScope(shield=True):
            await _finish(lanes, cancel=True)
        raise
    _stop_if_failed(lanes, refusal)
    return size


class _Ring:
    """The buffers of one transfer, and how many consumers still hold each."""

    def __init__(self, loop: asyncio.AbstractEventLoop, free: asyncio.Queue[int], holders: int) -> None:
        # Page-aligned (anonymous mappings), so that a store writing with O_DIRECT takes them as they are.
        self.buffers = [memoryview(mmap.mmap(-1, BUFFER_SIZE)) for _ in range(BUFFER_COUNT)]
        self._loop, self._free, self._holders = loop, free, holders
        self._held = [0] * BUFFER_COUNT
        self._lock = threading.Lock()

    def hold(self, index: int) -> None:
        self._held[index] = self._holders

    def release(self, index: int) -> None:
        with self._lock:
            self._held[index] -= 1
            last = self._held[index] == 0
        if last:
            self._loop.call_soon_threadsafe(self._free.put_nowait, index)


class _Lane:
    """One consumer in its own thread, taking the buffers in order. After its first error (or a
    cancel) it only releases the buffers it is given, so the transfer never waits on it."""

    def __init__(self, consume: Consumer, ring: _Ring, loop: asyncio.AbstractEventLoop) -> None:
        self.consume, self.ring = consume, ring
        self.error: BaseException | None = None
        self.cancelled = False
        self.queue: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self.done: asyncio.Future[None] = loop.create_future()
        self._loop = loop
        threading.Thread(target=self._run, name="spyglass-ingest", daemon=True).start()

    def _run(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                index, length = item
                if self.error is None and not self.cancelled:
                    try:
                        self.consume(self.ring.buffers[index][:length])
                    except BaseException as exc:
                        self.error = exc
                self.ring.release(index)
        finally:
            self._loop.call_soon_threadsafe(_resolve, self.done)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _hand_on(
    ring: _Ring, lanes: Sequence[_Lane], refusal: Callable[[], Exception | None], index: int, length: int
) -> None:
    """Give a filled buffer to every consumer, unless a consumer failed or the data was refused."""
    _stop_if_failed(lanes, refusal)
    ring.hold(index)
    for lane in lanes:
        lane.queue.put((index, length))


def _stop_if_failed(lanes: Sequence[_Lane], refusal: Callable[[], Exception | None]) -> None:
    """Raise the first consumer's error, else the refusal, if there is either."""
    for lane in lanes:
        if lane.error is not None:
            raise lane.error
    refused = refusal()
    if refused is not None:
        raise refused


async def _finish(lanes: Sequence[_Lane], cancel: bool = False) -> None:
    """Wait until every lane has worked (or, cancelled, skipped) through its queue and stopped."""
    for lane in lanes:
        lane.cancelled = lane.cancelled or cancel
        lane.queue.put(None)
    await asyncio.gather(*(lane.done for lane in lanes))
