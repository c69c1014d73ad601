"""spyglass.api.local_file below the API: ranges across read-ahead windows, a client that leaves,
a file that ends early. Whole-API behaviour is in test_image_download.py."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from spyglass.api import local_file
from spyglass.api.local_file import LocalFileResponse

SIZE = 3 * local_file.READ_AHEAD + 12345


@pytest.fixture(scope="module")
def data() -> bytes:
    return random.Random(7).randbytes(SIZE)


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> Path:
    target = tmp_path_factory.mktemp("local_file") / "blob"
    target.write_bytes(data)
    return target


def _open_fds() -> set[str]:
    """The descriptors this process holds on the test's blob files. (Not every descriptor: other
    threads of the test worker, a garbage-collected database connection, may close theirs meanwhile.)"""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if "/local_file" in target:
            found.add(f"{fd} {target}")
    return found


class _Client:
    """The ASGI `send` and `receive` of a client that is gone after `leave_after` body messages.

    As with uvicorn, `send` does not fail once the client is gone; `receive` says so."""

    def __init__(self, leave_after: int | None = None) -> None:
        self.leave_after = leave_after
        self.start: dict[str, Any] = {}
        self.body = bytearray()
        self.messages = 0
        self.finished = False
        self.gone = anyio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if self.gone.is_set():
            return
        self.messages += 1
        self.body += message["body"]
        self.finished = not message.get("more_body", False)
        if self.leave_after is not None and self.messages >= self.leave_after:
            self.gone.set()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}


class _CountingResponse(LocalFileResponse):
    """Counts the chunks read from the file and keeps any error a read met."""

    def __init__(self, *args: Any, read_delay: float = 0.0) -> None:
        super().__init__(*args)
        self.reads = 0
        self.read_errors: list[BaseException] = []
        self.read_delay = read_delay

    def _read(self, chunk: bytearray, position: int) -> local_file.Chunk:
        self.reads += 1
        time.sleep(self.read_delay)
        try:
            return super()._read(chunk, position)
        except BaseException as exc:
            self.read_errors.append(exc)
            raise


def _serve(response: LocalFileResponse, client: _Client, method: str = "GET") -> None:
    anyio.run(response, {"type": "http", "method": method}, client.receive, client.send)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, SIZE),
        (1, SIZE - 1),
        (local_file.READ_AHEAD - 3, 2 * local_file.READ_AHEAD + 5),
        (SIZE - 1, SIZE),
        (5, 5 + local_file.CHUNK),
    ],
)
@pytest.mark.parametrize("cached_reads", [True, False], ids=["page-cache-inline", "threads-only"])
def test_any_range_arrives_whole_and_in_order(
    path: Path, data: bytes, start: int, end: int, cached_reads: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not cached_reads:
        monkeypatch.setattr(local_file, "NOWAIT", None)
    before = _open_fds()
    client = _Client()
    _serve(LocalFileResponse.open(str(path), start, end, 206, {"Content-Range": "x"}), client)
    assert bytes(client.body) == data[start:end]
    assert client.finished
    headers = dict(client.start["headers"])
    assert client.start["status"] == 206
    assert headers[b"content-length"] == str(end - start).encode()
    assert headers[b"content-type"] == b"application/octet-stream"
    assert headers[b"content-range"] == b"x"
    assert _open_fds() == before


class _HoldingClient(_Client):
    """Keeps the last `held` bodies as views of the sender's buffers, as the server's transport keeps
    the unsent tail of a partial write, and copies each out only once it is older than that."""

    def __init__(self, held: int) -> None:
        super().__init__()
        self.held = held
        self.pending: list[memoryview] = []

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        self.messages += 1
        self.pending.append(memoryview(message["body"]))
        self.finished = not message.get("more_body", False)
        while self.pending and (len(self.pending) > self.held or self.finished):
            self.body += self.pending.pop(0)


@pytest.mark.parametrize("held", [1, 2, local_file.KEPT_BUFFERS + 1])
@pytest.mark.parametrize("cached_reads", [True, False], ids=["page-cache-inline", "threads-only"])
def test_a_buffer_still_held_downstream_is_not_reused(
    path: Path, data: bytes, held: int, cached_reads: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not cached_reads:
        monkeypatch.setattr(local_file, "NOWAIT", None)
    client = _HoldingClient(held)
    _serve(LocalFileResponse.open(str(path), 0, SIZE, 200, {}), client)
    assert client.finished
    assert bytes(client.body) == data


def test_buffers_are_reused_once_nothing_holds_them() -> None:
    buffers = local_file.ChunkBuffers(8)
    view = memoryview(buffers.take(8))  # the first buffer, now held only through a view
    first = id(view.obj)
    second = buffers.take(8)
    assert id(second) != first
    kept = id(second)
    del second
    assert id(buffers.take(8)) == kept
    view.release()
    assert id(buffers.take(8)) == first
    assert len(buffers.take(3)) == 3


def test_head_sends_the_headers_and_reads_nothing(path: Path) -> None:
    client = _Client()
    _serve(LocalFileResponse.open(str(path), 0, SIZE, 200, {}), client, method="HEAD")
    assert dict(client.start["headers"])[b"content-length"] == str(SIZE).encode()
    assert client.finished and client.body == b"" and client.messages == 1


def test_an_empty_file_sends_one_empty_message(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    client = _Client()
    _serve(LocalFileResponse.open(str(tmp_path / "empty"), 0, 0, 200, {}), client)
    assert client.finished and client.body == b"" and client.messages == 1


def test_a_client_that_leaves_stops_the_reads_and_closes_the_file(path: Path, data: bytes) -> None:
    before = _open_fds()
    client = _Client(leave_after=3)
    response = _CountingResponse(os.open(path, os.O_RDONLY), 0, SIZE, 200, {})
    _serve(response, client)
    assert bytes(client.body) == data[: 3 * local_file.CHUNK]
    assert response.reads <= 5 < SIZE // local_file.CHUNK
    assert response.read_errors == []
    assert _open_fds() == before


def test_cached_chunks_are_taken_without_a_thread(path: Path, data: bytes) -> None:
    client = _Client()
    response = _CountingResponse(os.open(path, os.O_RDONLY), 0, SIZE, 200, {})
    _serve(response, client)
    assert bytes(client.body) == data
    # The file is in the page cache: no chunk, and no read-ahead advice, went to a thread.
    assert response.reads == 0


def test_the_advice_goes_to_a_thread_where_the_window_is_not_cached(path: Path, data: bytes) -> None:
    class Uncached(_CountingResponse):
        def _cached(self, offset: int) -> bool:
            return False

    client = _Client()
    response = Uncached(os.open(path, os.O_RDONLY), 0, SIZE, 200, {})
    _serve(response, client)
    assert bytes(client.body) == data
    # Only the chunks where the read-ahead advice is due went to a thread (the data is cached).
    assert 0 < response.reads <= SIZE // (local_file.READ_AHEAD // 2) + 1 < SIZE // local_file.CHUNK


def test_the_file_stays_open_until_the_read_in_flight_ends(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client leaves while a (slow) read runs in a thread: closing the descriptor under it
    # would fail that read, or let it read whatever file reuses the descriptor number.
    monkeypatch.setattr(local_file, "NOWAIT", None)
    before = _open_fds()
    client = _Client(leave_after=1)
    response = _CountingResponse(os.open(path, os.O_RDONLY), 0, SIZE, 200, {}, read_delay=0.2)
    _serve(response, client)
    assert response.reads == 2
    assert response.read_errors == []
    assert _open_fds() == before


def test_a_file_shorter_than_announced_fails_the_response(path: Path) -> None:
    before = _open_fds()
    client = _Client()
    with pytest.raises(OSError, match="shorter than expected"):
        _serve(LocalFileResponse.open(str(path), 0, SIZE + 10, 200, {}), client)
    assert not client.finished
    assert _open_fds() == before


def test_a_deleted_file_is_reported_before_anything_is_sent(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        LocalFileResponse.open(str(tmp_path / "gone"), 0, 10, 200, {})
