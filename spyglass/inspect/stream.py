"""`FormatInspector`: feeds an image, chunk by chunk, to the format parsers, in bounded memory.

The inspector holds at most the one region the parser is waiting for (a header, a region table,
a descriptor: 1 MiB at the very most) and the last `TAIL_SIZE` bytes of the stream. Once the
parser is satisfied, or only waits for the end, a chunk costs a counter update and a tail copy.
The result does not depend on how the stream is cut into chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from spyglass.inspect.detect import inspect_image
from spyglass.inspect.model import TAIL_SIZE, Detected, End, InspectionError, Parser, Request, Want


class FormatInspector:
    """Streaming inspection: `feed` every chunk in order, then `finish` with the total size.

    `feed` and `finish` raise `InspectionError` as soon as the data is known to be invalid;
    after that every call raises the same error again.
    """

    def __init__(self) -> None:
        self._parser: Parser = inspect_image()
        self._request: Request | None = next(self._parser)
        self._buffer = bytearray()
        self._tail = bytearray()
        self._position = 0
        self._result: Detected | None = None
        self._error: InspectionError | None = None

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        self._raise_if_failed()
        view = memoryview(chunk).cast("B")
        start = self._position
        self._position += len(view)
        self._keep_tail(view)
        if isinstance(self._request, Want):
            with self._failing():
                self._fill(view, start)

    def finish(self, total_size: int) -> Detected:
        """End of data: settle what is still pending and return the detection."""
        self._raise_if_failed()
        if total_size != self._position:
            raise ValueError(f"finish({total_size}) after {self._position} bytes were fed")
        with self._failing():
            self._drain()
        assert self._result is not None
        return replace(self._result, size=total_size)

    def retained_bytes(self) -> int:
        """Bytes held by the inspector right now (for tests and memory accounting)."""
        return len(self._buffer) + len(self._tail)

    def _fill(self, view: memoryview, start: int) -> None:
        request = self._request
        while isinstance(request, Want):
            if len(self._buffer) == request.length:
                request = self._send(bytes(self._buffer))
                continue
            needed_from = request.offset + len(self._buffer)
            if needed_from >= self._position:
                return
            needed_to = min(request.offset + request.length, self._position)
            self._buffer += view[needed_from - start : needed_to - start]

    def _drain(self) -> None:
        request = self._request
        while request is not None:
            if isinstance(request, Want):
                if len(self._buffer) < request.length and not request.partial:
                    raise InspectionError(
                        f"The image is truncated: its {request.what} runs past the end of the data."
                    )
                request = self._send(bytes(self._buffer))
            else:
                request = self._send(End(self._position, bytes(self._tail)))

    def _send(self, value: bytes | End) -> Request | None:
        previous = self._request
        self._buffer = bytearray()
        try:
            request = self._parser.send(value)
        except StopIteration as stop:
            self._result = stop.value
            self._request = None
            return None
        if isinstance(request, Want) and isinstance(previous, Want):
            _check_forward(previous, request)
        elif isinstance(request, Want):
            raise RuntimeError("a parser asked for data after the end of the stream")
        self._request = request
        return request

    def _keep_tail(self, view: memoryview) -> None:
        if len(view) >= TAIL_SIZE:
            self._tail[:] = view[-TAIL_SIZE:]
            return
        self._tail += view
        if len(self._tail) > TAIL_SIZE:
            del self._tail[:-TAIL_SIZE]

    @contextmanager
    def _failing(self) -> Iterator[None]:
        try:
            yield
        except InspectionError as error:
            self._error = error
            self._request = None
            self._buffer = bytearray()
            raise

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error


def _check_forward(previous: Want, request: Want) -> None:
    # The stream is read once, front to back: a region before the end of the previous one is gone.
    if request.offset < previous.offset + previous.length or request.length < 0:
        raise InspectionError(
            f"The image's {request.what} is placed before its {previous.what}, "
            "which a streamed upload cannot honour."
        )
