"""A cap on request bodies, answered in the service's JSON error shape before any route reads them.

(Starlette's own body limit answers a declared oversize body in plain text, which a JSON client
cannot read as an error.)
"""

from __future__ import annotations

import json

from dualsearch.service.errors import error_body

MAX_BODY_BYTES = 16 * 1024 * 1024  # about 5,000 SciFact-sized documents in one POST /documents


class BodyLimit:
    """ASGI middleware answering 413 for a body over ``max_bytes``: at once when Content-Length says
    so, else as soon as the streamed body passes the limit (the body is read here, then handed on)."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, delivered = b"".join(chunks), False

        async def replay():
            nonlocal delivered
            if delivered:
                return await receive()  # after the body: wait for the client to disconnect
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        message = f"the request body is larger than the limit of {self.max_bytes:,} bytes"
        payload = json.dumps(error_body(413, "too_large", message)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
