"""Image data sent from a local file (the filesystem store), read ahead of the socket.

Uploads bypass the page cache (O_DIRECT), so the first downloads of an image come from the disk.
Read one chunk, send it, read the next: the disk then waits for the socket and the socket for the
disk, and a disk that reads a file at ~1 GB/s delivered 330-400 MB/s. Here the kernel is asked
to read a window ahead of the position being sent (POSIX_FADV_WILLNEED, which returns at once and
reads in the background), and the next chunk is read while the current one is sent: 780-1180 MB/s
from the disk in same-run comparisons.

A chunk the page cache already holds (read ahead, or a popular image) is taken at once in the
event loop (preadv with RWF_NOWAIT, which never waits on the disk); only the others, and the
read-ahead advice, go to a thread. Without that thread hop per MiB, one cached download went from
~1.8-2.1 to ~2.1-2.4 GB/s and four at once from ~1.7-1.9 to ~2.8 GB/s in all (same-run A/B).

The chunks are read into a few buffers reused for the whole response (ChunkBuffers), not into a
new one each time: a fresh MiB is zeroed and has its pages faulted in before the read fills it,
about 15 % of the server's CPU in a cached download (py-spy). With that, and no read-ahead advice
for what the page cache holds, the response costs 0.13 instead of 0.20 CPU-seconds per GiB
(bench/local_file_response.py), against 0.10 for the preadv copy alone. The rest of a download's
CPU is the kernel's: uvicorn implements no ASGI zero-copy send (sendfile), so each byte is copied
from the page cache into a buffer and from the buffer into the socket.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from typing import Self

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

CHUNK = 1024 * 1024
# How far ahead of the socket the kernel reads, asked for a half window at a time.
READ_AHEAD = 16 * CHUNK
# preadv's flag for "only what the page cache holds" (Linux).
NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)
# Buffers one response keeps for reuse: the chunk being read, the one being sent, and the unsent
# tail of the one before, which the server's transport may still hold.
KEPT_BUFFERS = 4

Chunk = bytes | bytearray


class LocalFileResponse(Response):
    """Bytes [start, end) of an open file; the response owns the descriptor and closes it."""

    def __init__(self, fd: int, start: int, end: int, status_code: int, headers: Mapping[str, str]) -> None:
        self.fd, self.start, self.end = fd, start, end
        self.status_code = status_code
        self.background = None
        self.raw_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(end - start),
                "Accept-Ranges": "bytes",
                **headers,
            }.items()
        ]
        self._advised = start
        self._buffers = ChunkBuffers(CHUNK)
        self._probe = bytearray(1)

    @classmethod
    def open(cls, path: str, start: int, end: int, status_code: int, headers: Mapping[str, str]) -> Self:
        """Raises FileNotFoundError when the file is gone (the image was deleted meanwhile)."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return cls(fd, start, end, status_code, headers)

    def close(self) -> None:
        """Close the file (once); for a response that will not be sent after all."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            if scope.get("method") == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            failure: Exception | None = None
            async with anyio.create_task_group() as group:
                # The server does not fail `send` once the client is gone: stop on its disconnect
                # message, or the rest of the file would be read from the disk for nobody.
                group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
                try:
                    await self._send_body(send)
                except Exception as exc:  # raised as itself, not inside an exception group
                    failure = exc
                group.cancel_scope.cancel()
            if failure is not None:
                raise failure
        finally:
            self.close()

    async def _send_body(self, send: Send) -> None:
        position = self.start
        if position >= self.end:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        loop = asyncio.get_running_loop()
        reading: asyncio.Future[Chunk] | None = self._start_read(loop, position)
        try:
            while reading is not None:
                # Shielded: cancelling this task must not forget the read still running in its thread.
                chunk = await asyncio.shield(reading)
                if not chunk:
                    raise OSError(f"file shorter than expected: no data at offset {position}")
                position += len(chunk)
                more = position < self.end
                reading = self._start_read(loop, position) if more else None
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
        finally:
            if reading is not None:
                # Stopped early: the read in flight ends before the descriptor is closed.
                with anyio.CancelScope(shield=True):
                    await asyncio.wait([reading])
                reading.exception()

    def _start_read(self, loop: asyncio.AbstractEventLoop, position: int) -> asyncio.Future[Chunk]:
        """The next chunk: taken at once where the page cache holds it (no thread hop, no wait on
        the disk), else read in a thread. The read-ahead advice is given from a thread too, unless
        the page cache holds the window it would ask for already."""
        chunk = self._buffers.take(min(CHUNK, self.end - position))
        if self._advice_due(position) and self._cached(self._window_end() - 1):
            self._advised = self._window_end()
        if not self._advice_due(position) and NOWAIT is not None:
            try:
                got = os.preadv(self.fd, [chunk], position, NOWAIT)
            except OSError:  # not cached (EAGAIN), or a filesystem without RWF_NOWAIT
                got = 0
            # Only a whole chunk: taking the few pages read so far would chase the read-ahead with
            # tiny sends instead of waiting in a thread for the full MiB.
            if got == len(chunk):
                done: asyncio.Future[Chunk] = loop.create_future()
                done.set_result(chunk)
                return done
        return loop.run_in_executor(None, self._read, chunk, position)

    def _advice_due(self, position: int) -> bool:
        """Whether the read-ahead window ends less than half a window past `position`."""
        return position + READ_AHEAD // 2 > self._advised and self._advised < self.end

    def _window_end(self) -> int:
        """Where the next read-ahead window ends."""
        return min(self._advised + READ_AHEAD, self.end)

    def _cached(self, offset: int) -> bool:
        """Whether the page cache holds the byte at `offset`. The last byte of a window stands for
        the window: a popular image is cached whole, and a chunk of it found missing after all is
        still read in a thread (with the kernel's own read-ahead). Skipping the advice there saves
        a thread hop every half window, ~7 % of the CPU this response spends on a cached image."""
        if NOWAIT is None:
            return False
        try:
            return os.preadv(self.fd, [self._probe], offset, NOWAIT) == 1
        except OSError:
            return False

    def _read(self, chunk: bytearray, position: int) -> Chunk:
        if self._advice_due(position):
            start, end = self._advised, self._window_end()
            os.posix_fadvise(self.fd, start, end - start, os.POSIX_FADV_WILLNEED)
            self._advised = end
        got = os.preadv(self.fd, [chunk], position)
        # Short only where the file ends early; the caller sees what there was.
        return chunk if got == len(chunk) else bytes(chunk[:got])


class ChunkBuffers:
    """Buffers of `size` bytes, reused. A buffer handed to `send` can outlive the call: the server's
    transport keeps the unsent tail of a partial write (a memoryview of the buffer) until the socket
    takes it. So a kept buffer is reused only when nothing but this pool refers to it, which its
    reference count tells (the transport's view holds a reference); otherwise a new one is made."""

    def __init__(self, size: int) -> None:
        self.size = size
        # What a buffer that only the pool holds counts, measured the way `take` measures it.
        self._kept = [bytearray()]
        self._idle = self._counts()[0]
        self._kept = []

    def _counts(self) -> list[int]:
        return [sys.getrefcount(buffer) for buffer in self._kept]

    def take(self, length: int) -> bytearray:
        """A buffer of `length` bytes that nothing else refers to (a new one unless it is `size`)."""
        if length != self.size:
            return bytearray(length)
        for index, count in enumerate(self._counts()):
            if count <= self._idle:
                return self._kept[index]
        buffer = bytearray(length)
        if len(self._kept) < KEPT_BUFFERS:
            self._kept.append(buffer)
        return buffer


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()
