"""The Host header check of a server listening on loopback, against DNS rebinding.

A web page whose domain the attacker re-points at 127.0.0.1 calls ``dualsearch serve`` as its own
origin, so the browser lets it read the answers: every document of an index whose reads are open on
loopback. The browser still sends the page's domain as the Host header, so a server on loopback
answers only to the names of this machine. Beyond loopback every route but ``/health`` needs the
token, which such a page does not have, and the names clients use (a DNS name, a proxy's) are the
operator's to choose: no Host check there.
"""

from __future__ import annotations

from dualsearch.service.asgi import first_header, send_error
from dualsearch.service.errors import ServiceError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def names_this_machine(host: str | None, local: tuple[str, int] | None) -> bool:
    """True when the Host header ``host`` is 127.0.0.1, localhost or [::1] (or the address the connection
    came in on), with the port it came in on; ``local`` is that (address, port), None when unknown.
    Without a port, a Host header means port 80.

    Example:
        >>> names_this_machine("localhost:8000", ("127.0.0.1", 8000))
        True
        >>> names_this_machine("attacker.example.com:8000", ("127.0.0.1", 8000))
        False
        >>> names_this_machine("localhost:8001", ("127.0.0.1", 8000))
        False
    """
    if not host:
        return False
    host = host.lower()
    if host.endswith("]") or ":" not in host:  # no port: "[::1]", "localhost"
        name, port = host, 80
    else:
        name, _, port_text = host.rpartition(":")
        if not (port_text.isascii() and port_text.isdigit()):
            return False
        port = int(port_text)
    if local is None:
        return name in LOOPBACK_NAMES
    address, local_port = local
    names = {*LOOPBACK_NAMES, f"[{address}]" if ":" in address else address}
    return name in names and port == local_port


class LoopbackHostOnly:
    """ASGI middleware: 400 ``untrusted_host`` for a request whose Host header does not name this machine
    (:func:`names_this_machine`), before any route runs."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            host, local = first_header(scope, b"host"), scope.get("server")
            if not names_this_machine(host, local):
                port = f":{local[1]}" if local else ""
                message = (
                    f"the Host header {host!r} does not name this machine: a server listening on loopback "
                    f"answers only to 127.0.0.1{port}, localhost{port} or [::1]{port} (DNS rebinding)"
                )
                await send_error(send, ServiceError(400, "untrusted_host", message), close=True)
                return
        await self.app(scope, receive, send)
