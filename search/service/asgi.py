"""What the service's ASGI middlewares share: reading a header from the scope, answering an error.

The middlewares (:mod:`~dualsearch.service.hosts`, :mod:`~dualsearch.service.auth`,
:mod:`~dualsearch.service.limits`) refuse a request before any route runs, so they answer in raw ASGI
messages, in the JSON error shape of :mod:`~dualsearch.service.errors`.
"""

from __future__ import annotations

import json

from dualsearch.service.errors import ServiceError, error_body


def first_header(scope: dict, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), as Starlette's ``request.headers`` gives it.

    Example:
        >>> first_header({"headers": [(b"host", b"localhost:8000"), (b"host", b"other")]}, b"host")
        'localhost:8000'
    """
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


async def send_error(send, error: ServiceError, close: bool = False) -> None:
    """Answer ``error`` through an ASGI ``send``. ``close`` closes the connection after the answer (uvicorn
    reads ``Connection: close``): a client refused before its body was read would otherwise have the rest
    of its body read, and discarded."""
    payload = json.dumps(error_body(error.status, error.code, error.message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
