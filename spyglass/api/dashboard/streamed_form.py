"""A multipart/form-data body read as it arrives: the fields before the first file, then that
file's bytes as a stream.

This is how the upload form works without JavaScript: the browser posts the form with its file,
the CSRF token (a field before the file) is checked before any of the file is read, and the file's
bytes go on into the image API's upload as they come. Starlette's `request.form()` would first
spool the whole file to memory or a temporary file; here no copy is kept anywhere.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from spyglass.errors import Invalid

# The fields before the file are a few short values; more than this is not a dashboard form.
# Both limits hold as the body arrives: a field is counted chunk by chunk and refused once past
# the size, so no more than about FIELDS_MAX_BYTES (and one chunk of the body) is ever kept.
FIELDS_MAX_BYTES = 64 * 1024
# The dashboard's forms have a handful of fields; empty parts count too.
FIELDS_MAX_COUNT = 32
TOO_LARGE = "The form's fields are too large."
TOO_MANY = "The form has too many fields."
TRUNCATED = "The upload ended before the whole file arrived: the image has no data."


def is_multipart(request: Request) -> bool:
    media_type, _ = parse_options_header(request.headers.get("content-type"))
    return media_type == b"multipart/form-data"


@dataclass
class StreamedForm:
    fields: FormData
    # The first file part's file name ("" when the form's file input was left empty), or None.
    file_name: str | None
    file: AsyncIterator[bytes]


async def read(request: Request) -> StreamedForm:
    """The fields up to the first file part; its bytes then stream from `file` (read at most once)."""
    return await read_body(request.headers.get("content-type"), request.stream())


async def read_body(content_type: str | None, body: AsyncIterator[bytes]) -> StreamedForm:
    """`read` of a body given as its Content-Type and its chunks."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise Invalid("A multipart/form-data body needs a boundary.")
    parts = _Parts(body, boundary)
    fields: list[tuple[str, str | UploadFile]] = []
    size = 0
    while (part := await parts.next_part()) is not None:
        name, file_name = part
        if file_name is not None:
            return StreamedForm(FormData(fields), file_name, parts.data())
        if len(fields) >= FIELDS_MAX_COUNT:
            raise Invalid(TOO_MANY)
        size += len(name)
        value = bytearray()
        async for chunk in parts.data():
            size += len(chunk)
            if size > FIELDS_MAX_BYTES:
                raise Invalid(TOO_LARGE)
            value += chunk
        if size > FIELDS_MAX_BYTES:
            raise Invalid(TOO_LARGE)
        fields.append((name, value.decode("utf-8", "replace")))
    return StreamedForm(FormData(fields), None, _nothing())


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an empty async generator


class _Parts:
    """python-multipart's push parser turned into pulls: events are queued as each chunk of the
    body is parsed, and taken from the queue by `next_part` and `data`."""

    def __init__(self, body: AsyncIterator[bytes], boundary: bytes) -> None:
        self.body = body.__aiter__()
        self.events: deque[tuple[str, bytes]] = deque()

        def mark(kind: str) -> None:
            self.events.append((kind, b""))

        def keep(kind: str, data: bytes, start: int, end: int) -> None:
            self.events.append((kind, bytes(data[start:end])))

        try:
            self.parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": lambda: mark("begin"),
                    "on_header_field": lambda d, s, e: keep("field", d, s, e),
                    "on_header_value": lambda d, s, e: keep("value", d, s, e),
                    "on_header_end": lambda: mark("header"),
                    "on_headers_finished": lambda: mark("headers"),
                    "on_part_data": lambda d, s, e: keep("data", d, s, e),
                    "on_part_end": lambda: mark("end"),
                    "on_end": lambda: mark("done"),
                },
            )
        except FormParserError as exc:
            raise Invalid(f"Malformed multipart/form-data body: {exc}") from exc

    async def _next(self) -> tuple[str, bytes]:
        while not self.events:
            try:
                chunk = await self.body.__anext__()
            except StopAsyncIteration:
                raise Invalid(TRUNCATED) from None
            try:
                self.parser.write(chunk)
            except FormParserError as exc:
                raise Invalid(f"Malformed multipart/form-data body: {exc}") from exc
        return self.events.popleft()

    async def next_part(self) -> tuple[str, str | None] | None:
        """The next part's field name and file name (None: a plain field); None after the last."""
        field, value = b"", b""
        headers: dict[bytes, bytes] = {}
        while True:
            kind, data = await self._next()
            if kind == "done":
                return None
            if kind == "begin":
                headers = {}
            elif kind == "field":
                field += data
            elif kind == "value":
                value += data
            elif kind == "header":
                headers[field.lower()] = value
                field, value = b"", b""
            elif kind == "headers":
                _, options = parse_options_header(headers.get(b"content-disposition", b""))
                name = options.get(b"name", b"").decode("utf-8", "replace")
                file_name = options.get(b"filename")
                return name, None if file_name is None else file_name.decode("utf-8", "replace")

    async def data(self) -> AsyncIterator[bytes]:
        """The current part's bytes, up to its end."""
        while True:
            kind, chunk = await self._next()
            if kind == "end":
                return
            if chunk:
                yield chunk
