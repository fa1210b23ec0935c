"""Bearer tokens: writes always need one; reads need one too when the server listens beyond loopback.

The token comes from a file (``--token-file``) or the ``DUALSEARCH_TOKEN`` environment variable, never
from the command line (where ``ps`` shows it). It is compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dualsearch.errors import InvalidInputError
from dualsearch.service.asgi import first_header, send_error
from dualsearch.service.errors import ServiceError

TOKEN_VARIABLE = "DUALSEARCH_TOKEN"
MIN_TOKEN_CHARS = 16
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dualsearch"'}
_TOKEN_EXAMPLE = 'for example: python -c "import secrets; print(secrets.token_urlsafe(32))"'


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, ``localhost``).

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0"), is_loopback("localhost")
        (True, False, True)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def read_token(token_file: str | Path | None) -> str | None:
    """The token from ``token_file``, else from ``$DUALSEARCH_TOKEN``, else None.

    Raises:
        InvalidInputError: the file cannot be read, or the token cannot serve (:func:`token_problem`).
    """
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidInputError(f"cannot read the token file {token_file}: {error}") from None
        source = str(token_file)
    else:
        token = os.environ.get(TOKEN_VARIABLE, "").strip()
        source = f"${TOKEN_VARIABLE}"
        if not token:
            return None
    problem = token_problem(token)
    if problem is not None:
        raise InvalidInputError(f"the token in {source} {problem} ({_TOKEN_EXAMPLE})")
    return token


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot serve as a bearer token, or None: it is shorter than 16 characters, or it
    holds a character that an HTTP client cannot send in ``Authorization: Bearer ...`` (a line break,
    a space, anything beyond visible ASCII). Such a token would never match, so every write (and every
    read off loopback) would fail with 403 while the server looked healthy.

    Example:
        >>> token_problem("0123456789abcdef") is None
        True
        >>> token_problem("naïve-token-0123456789")
        "holds 'ï' (U+00EF) at character 3; a token is visible ASCII: letters, digits and punctuation"
    """
    lines = token.splitlines()
    if len(lines) > 1:
        return f"runs over {len(lines)} lines; a token is one line"
    for position, character in enumerate(token, 1):
        if not "!" <= character <= "~":
            return (
                f"holds {character!r} (U+{ord(character):04X}) at character {position}; "
                "a token is visible ASCII: letters, digits and punctuation"
            )
    if len(token) < MIN_TOKEN_CHARS:
        return f"has {len(token)} characters; use at least {MIN_TOKEN_CHARS}"
    return None


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token (anyone could then write, or read, the index)."""
    if token is None and not is_loopback(host):
        raise InvalidInputError(
            f"refusing to listen on {host} without a token: give --token-file FILE or set ${TOKEN_VARIABLE} "
            "(or listen on 127.0.0.1)"
        )


def check_authorization(header: str | None, token: str | None, action: str) -> None:
    """Raise 401 without credentials, 403 with wrong ones (or when no token is configured)."""
    if token is None:
        raise ServiceError(
            403,
            "writes_disabled",
            f"{action} needs a token, and this server was started without one "
            f"(start it with --token-file FILE or ${TOKEN_VARIABLE})",
        )
    if not header:
        raise ServiceError(401, "unauthorized", f"{action} needs 'Authorization: Bearer TOKEN'", _CHALLENGE)
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ServiceError(403, "forbidden", "the bearer token is not valid")


@dataclass(frozen=True)
class TokenRequired:
    """What a route asks of a request: the server's token, for ``action`` ("reading", "changing the index")."""

    token: str | None
    action: str

    def check(self, authorization: str | None) -> None:
        """Raise the 401 or 403 of :func:`check_authorization` unless ``authorization`` carries the token."""
        check_authorization(authorization, self.token, self.action)


class TokenGate:
    """ASGI middleware: a request to a route that needs the token (``required(scope)``, None for the
    others) is answered 401 or 403 before a byte of its body is read, and its connection closed.

    FastAPI reads a route's declared body before it runs the route's dependencies, so without this a
    client without the token could make the server hold a body of up to the size limit on every
    connection it opens. The route's own dependency checks the token again (it stays guarded however
    the app is served).
    """

    def __init__(self, app, required: Callable[[dict], TokenRequired | None]) -> None:
        self.app, self.required = app, required

    async def __call__(self, scope, receive, send) -> None:
        required = self.required(scope) if scope["type"] == "http" else None
        if required is not None:
            try:
                required.check(first_header(scope, b"authorization"))
            except ServiceError as refusal:
                await send_error(send, refusal, close=True)
                return
        await self.app(scope, receive, send)
