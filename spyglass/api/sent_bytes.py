"""A download response that reports, once it ended, how many body bytes it handed to the server:
Glance's image.send carries the bytes actually sent (spyglass.sharing.usage.notify_sent)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send


class CountingResponse(Response):
    """`inner` as it is, then `ended(bytes sent)` in a worker thread, however the sending ended."""

    def __init__(self, inner: Response, ended: Callable[[int], None]) -> None:
        # Not Response.__init__: this response renders nothing of its own.
        self.inner = inner
        self.ended = ended
        self.status_code = inner.status_code
        self.raw_headers = inner.raw_headers
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = 0

        async def counting(message: Message) -> None:
            nonlocal sent
            await send(message)
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))

        try:
            await self.inner(scope, receive, counting)
        finally:
            # Shielded: a download cancelled by the client's leaving still reports what went out.
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self.ended, sent)
