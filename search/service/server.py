"""Bind a socket and serve the application with uvicorn: :class:`Server`.

The socket is bound here, not by uvicorn, so port 0 (any free port) works and the caller learns the
port before the first request, which is how the tests run the real server.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

from dualsearch.errors import InvalidInputError, require
from dualsearch.service.auth import check_bind

logger = logging.getLogger(__name__)


class Server:
    """``app`` served on ``host:port`` (port 0: any free one), in this thread or a background one.

    Example:
        >>> with Server(create_app(live), "127.0.0.1", 0).start() as server:  # doctest: +SKIP
        ...     print(server.url)
        http://127.0.0.1:40123
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 8000, token: str | None = None) -> None:
        check_bind(host, token)
        require("uvicorn", "serve", "the HTTP service")
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: without it a response's headers and body leave as two small
        # writes, and the second waits for the client's delayed ACK (40 ms on Linux) on every request.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.socket.bind((host.strip("[]"), port))
        except OSError as error:
            self.socket.close()
            raise InvalidInputError(
                f"cannot listen on {host}:{port}: {error.strerror}; choose another --port"
            ) from None
        # Listening now, not when uvicorn has started (after the app's lifespan), so a client that reads
        # the URL printed at start-up and connects at once queues in the backlog instead of being refused
        self.socket.listen(2048)
        self.host, self.port = host, self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def run(self) -> None:
        """Serve until Ctrl+C (or :meth:`stop` from another thread)."""
        self._server.run(sockets=[self.socket])

    def start(self, timeout: float = 30.0) -> Server:
        """Serve in a background thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self.run, name="dualsearch-server", daemon=True)
        self._thread.start()
        for _ in range(int(timeout / 0.02)):
            if self._server.started or not self._thread.is_alive():
                break
            time.sleep(0.02)
        if not self._server.started:
            raise RuntimeError(f"the server on {self.url} did not start within {timeout:.0f}s")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.socket.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
