"""Bounds on request bodies, in size and in time, answered in the service's JSON error shape.

Nothing is read ahead here: a body is read only by the route that takes one, after
:class:`~dualsearch.service.auth.TokenGate` has checked the token the route needs, so a client without
the token cannot make the server hold its body, and a route that takes no body never waits for one.
(Starlette's own body limit answers in plain text, which a JSON client cannot read as an error.)
"""

from __future__ import annotations

import time

from dualsearch.service.asgi import first_header, send_error
from dualsearch.service.errors import ServiceError

MAX_BODY_BYTES = 16 * 1024 * 1024  # about 5,000 SciFact-sized documents in one POST /documents
# A whole body must arrive within this of the request's start: 16 MiB needs about 2.2 Mbit/s. Without a bound
# a client that sends all but the last byte holds its connection and the bytes it sent for ever.
BODY_SECONDS = 60.0
_DISCONNECT = {"type": "http.disconnect"}


class BodyLimit:
    """ASGI middleware bounding the body a route reads: 413 at once when Content-Length is over
    ``max_bytes``, else as soon as the body read passes it; 408 when the body has not all arrived
    ``seconds`` after the request began. The refusal is answered here, with ``Connection: close``; the
    route then sees the client as gone, and whatever it answers to that is dropped.
    """

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES, seconds: float = BODY_SECONDS) -> None:
        self.app, self.max_bytes, self.seconds = app, max_bytes, seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = first_header(scope, b"content-length")
        if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            await send_error(send, self._too_large(), close=True)
            return
        await _BoundedRequest(self, scope, receive, send).run()

    def _too_large(self) -> ServiceError:
        return ServiceError(413, "too_large", f"the request body is larger than the limit of {self.max_bytes:,} bytes")

    def _too_slow(self) -> ServiceError:
        return ServiceError(408, "body_timeout", f"the request body did not all arrive within {self.seconds:g} s")


class _BoundedRequest:
    """One request passed on to the app with its body bounded as :class:`BodyLimit` says."""

    def __init__(self, limit: BodyLimit, scope, receive, send) -> None:
        self.limit, self.scope, self._receive, self._send = limit, scope, receive, send
        self.deadline = time.monotonic() + limit.seconds
        self.received, self.body_complete, self.refused, self.responded = 0, False, False, False

    async def run(self) -> None:
        try:
            await self.limit.app(self.scope, self.receive, self.send)
        except Exception:
            if not self.refused:  # after a refusal, the route's complaint about the vanished body is moot
                raise

    async def receive(self):
        if self.refused:
            return _DISCONNECT
        if self.body_complete:  # after the body, a receive waits for the client to leave: no deadline
            return await self._receive()
        import anyio

        try:
            with anyio.fail_after(max(self.deadline - time.monotonic(), 0)):
                message = await self._receive()
        except TimeoutError:
            return await self._refuse(self.limit._too_slow())
        self.received += len(message.get("body", b""))
        if self.received > self.limit.max_bytes:
            return await self._refuse(self.limit._too_large())
        self.body_complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    async def send(self, message) -> None:
        if self.refused:
            return
        self.responded = self.responded or message["type"] == "http.response.start"
        await self._send(message)

    async def _refuse(self, error: ServiceError):
        if not self.responded:
            await send_error(self._send, error, close=True)
        self.refused = True
        return _DISCONNECT
