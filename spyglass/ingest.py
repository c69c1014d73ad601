"""One pass over incoming image data: into a blob, hashed and inspected on the way.

Every byte of an upload (`PUT /file`), a stage (`PUT /stage`) and a web-download goes through
`receive` exactly once. The body is copied into one of two buffers that are reused for the whole
transfer; when one is full it is handed to worker threads while the event loop fills the other
from the network. Each consumer of a buffer runs in its own thread, since hashlib releases the
GIL: md5 (`checksum`), the multihash (`os_hash_value`), sha256 when the image declares
`owner_specified.openstack.sha256`, the disk format inspector, and the blob writer. Memory per
transfer is two buffers plus what the inspector holds (about 1 MiB at most), whatever the size.

Nothing is kept unless every check passed: the size cap, the announced length, the digests the
client declared, and the format inspection (spyglass.inspect.check against the declared
disk_format). Otherwise the blob is aborted and the caller gets the domain error.

A blob writer must not keep the memoryview it is given once `write` returns: the buffer is reused.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool

from spyglass.blobs import BlobStore, BlobStoreFull
from spyglass.db.image_queries import ImageRecord
from spyglass.errors import Invalid, TooLarge
from spyglass.inspect import Detected, FormatInspector, InspectionError, check, virtual_size
from spyglass.settings import Settings

BUFFER_SIZE = 4 * 1024 * 1024
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

    @classmethod
    def of(cls, record: ImageRecord, settings: Settings, length: int | None) -> Expectations:
        if length is not None and length > settings.image_size_cap:
            raise TooLarge(
                f"Image exceeds the storage quota: {length} bytes > {settings.image_size_cap} bytes."
            )
        return cls(
            disk_format=record["disk_format"],
            size_cap=settings.image_size_cap,
            algorithm=settings.hashing_algorithm,
            inspect=settings.disk_format_inspection,
            length=length,
            md5=(record.properties.get(DECLARED_MD5) or "").lower() or None,
            sha256=(record.properties.get(DECLARED_SHA256) or "").lower() or None,
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
        self.refusal: InspectionError | None = None

    def all(self, write: Consumer) -> list[Consumer]:
        consumers: list[Consumer] = [self.md5.update, self.multi.update, write]
        if self.sha256 is not None:
            consumers.append(self.sha256.update)
        if self.inspector is not None:
            consumers.append(self._inspect)
        return consumers

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
    writer = await run_in_threadpool(store.writer, key)
    try:
        consumers = _Consumers(expect)
        size = await pump(body, consumers.all(writer.write), expect.size_cap, lambda: consumers.refusal)
        digest = consumers.digest(size)
        await run_in_threadpool(writer.commit)
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(writer.abort)
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

    While the consumers work on one buffer, the next is filled from the body. `refusal` is asked
    after each buffer: once it returns an error the transfer stops with it.
    """
    buffers = (bytearray(BUFFER_SIZE), bytearray(BUFFER_SIZE))
    current, fill, size = 0, 0, 0
    pending: asyncio.Future[None] | None = None
    try:
        async for chunk in body:
            size += len(chunk)
            if size > size_cap:
                raise TooLarge(f"Image exceeds the storage quota of {size_cap} bytes.")
            view = memoryview(chunk)
            while view:
                taken = min(len(view), BUFFER_SIZE - fill)
                buffers[current][fill : fill + taken] = view[:taken]
                fill, view = fill + taken, view[taken:]
                if fill == BUFFER_SIZE:
                    await _settle(pending, refusal)
                    pending = asyncio.ensure_future(_feed(consumers, memoryview(buffers[current])))
                    current, fill = 1 - current, 0
        await _settle(pending, refusal)
        pending = None
        if fill:
            await _feed(consumers, memoryview(buffers[current])[:fill])
    except BaseException:
        if pending is not None:
            # Never leave a consumer running on a blob the caller is about to abort.
            with anyio.CancelScope(shield=True):
                await asyncio.gather(pending, return_exceptions=True)
        raise
    return size


async def _settle(pending: asyncio.Future[None] | None, refusal: Callable[[], Exception | None]) -> None:
    if pending is not None:
        await pending
    refused = refusal()
    if refused is not None:
        raise refused


async def _feed(consumers: Sequence[Consumer], data: memoryview) -> None:
    """One buffer to every consumer at once, each in a worker thread; the first error is raised
    only after all of them are done with the buffer."""
    results = await asyncio.gather(
        *(run_in_threadpool(consume, data) for consume in consumers), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
