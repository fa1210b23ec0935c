"""One JSON shape for every error the service returns, and the HTTP status of each kind of error.

Every error body is ``{"error": {"status": 400, "code": "invalid_input", "message": "..."}}``:
clients test ``code`` (stable), people read ``message``. A fault of ours answers 500 with a generic
message; the traceback goes to the server log, never to the client.
"""

from __future__ import annotations

import logging

from dualsearch.errors import (
    CorpusError,
    DiskFullError,
    DualsearchError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidInputError,
    ShardUnavailableError,
    UnknownDocumentError,
    is_disk_full,
)

logger = logging.getLogger(__name__)
WRITER_RETRY_SECONDS = 5  # what a 409 writer_busy suggests: another process (a reindex) is writing
SHARD_RETRY_SECONDS = 10  # what a 503 shard_unavailable suggests: about the time Serve takes to start a replica


class ServiceError(Exception):
    """An error with its HTTP status and stable code, raised by the routes."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_body(status: int, code: str, message: str) -> dict:
    return {"error": {"status": status, "code": code, "message": message}}


def classify(error: Exception) -> ServiceError:
    """The status and code for an exception raised while answering a request.

    Example:
        >>> classify(InvalidInputError("k must be at least 1")).status
        400
    """
    if isinstance(error, ServiceError):
        return error
    if isinstance(error, UnknownDocumentError):
        return ServiceError(404, "unknown_document", str(error))
    if isinstance(error, (InvalidInputError, CorpusError)):
        return ServiceError(400, "invalid_input", str(error))
    if isinstance(error, IndexLockedError):
        return ServiceError(409, "writer_busy", str(error), {"Retry-After": str(WRITER_RETRY_SECONDS)})
    if isinstance(error, IndexNotFoundError):
        return ServiceError(503, "no_index", str(error))
    if isinstance(error, ShardUnavailableError):
        return ServiceError(503, "shard_unavailable", str(error), {"Retry-After": str(SHARD_RETRY_SECONDS)})
    if isinstance(error, IndexMismatchError):
        return ServiceError(409, "towers_differ", str(error))
    if isinstance(error, DiskFullError):
        return ServiceError(507, "insufficient_storage", str(error))
    if is_disk_full(error):  # raised outside a version's writer: the system's words are all we have
        logger.error("the disk is full", exc_info=error)
        return ServiceError(507, "insufficient_storage", "no space left on the server's disk; its log has details")
    if isinstance(error, DualsearchError):
        return ServiceError(500, "index_error", str(error))
    logger.error("request failed", exc_info=error)
    return ServiceError(500, "internal_error", f"the server failed ({type(error).__name__}); its log has details")
