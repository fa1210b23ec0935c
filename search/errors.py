"""The exceptions dualsearch raises on purpose: one hierarchy, at the bottom of the package.

Every error a user can cause derives from :class:`DualsearchError`, and also from the builtin a
Python caller would expect (``ValueError``, ``FileNotFoundError``, ``ImportError``), so both
``except DualsearchError`` and ``except ValueError`` work. The CLI prints ``str(error)`` on one line
and exits non-zero. This module imports nothing of dualsearch, so every layer can use it.

Example:
    >>> try:
    ...     raise InvalidInputError("k must be at least 1, got 0")
    ... except ValueError as error:
    ...     print(isinstance(error, DualsearchError), error)
    True k must be at least 1, got 0
"""

from __future__ import annotations


class DualsearchError(Exception):
    """Base class of every error dualsearch raises on purpose."""


class InvalidInputError(DualsearchError, ValueError):
    """An argument is out of range or malformed (an empty query, ``k < 1``, an unknown option)."""


class UnknownDocumentError(InvalidInputError, KeyError):
    """A document id the index does not hold (for a delete): the service answers 404."""

    def __str__(self) -> str:  # KeyError's own quotes the message
        return str(self.args[0]) if self.args else ""


class CorpusError(DualsearchError, ValueError):
    """A corpus record is unusable. The message names the source and the line or record."""


class TrainingDataError(CorpusError):
    """Training pairs are unusable: a query without a positive, an unknown document id, empty text,
    or a source with no usable pairs. The message names the source (and the record when there is one)."""


class CorpusNotFoundError(DualsearchError, FileNotFoundError):
    """A corpus path does not exist or holds nothing we can read."""


class IndexNotFoundError(DualsearchError, FileNotFoundError):
    """An index directory does not exist or is not a dualsearch index."""


class IndexMismatchError(DualsearchError, ValueError):
    """An index was built with other towers (or another format) than the ones offered to open it."""


class IndexBuildError(DualsearchError, ValueError):
    """FAISS refused to build the requested index (we translate its C++ errors into this)."""


class SearchFailedError(DualsearchError, RuntimeError):
    """FAISS failed while searching (we translate its C++ errors into this), or the searcher is closed."""


class ShardUnavailableError(SearchFailedError):
    """A shard of a sharded index served on Ray gave no answer in time: no replica of it is healthy."""

    def __init__(self, shard: str, message: str) -> None:
        super().__init__(message)
        self.shard = shard


class IndexCorruptError(DualsearchError, ValueError):
    """A file of an index directory is missing, truncated or altered. The message says how to recover.

    Example:
        >>> print(IndexCorruptError("my-index/v000001/index.faiss is missing"))
        my-index/v000001/index.faiss is missing. To recover, rebuild the index: dualsearch index CORPUS --out DIR
    """

    RECOVERY = "To recover, rebuild the index: dualsearch index CORPUS --out DIR"

    def __str__(self) -> str:
        return f"{super().__str__()}. {self.RECOVERY}"


class IndexNotWritableError(DualsearchError, PermissionError):
    """An index directory (or a file in it) cannot be created or written: read-only, or under a file."""


class ModelError(DualsearchError, ValueError):
    """Tower weights cannot be loaded or do not match their expected checksum."""


class IndexLockedError(DualsearchError, RuntimeError):
    """Another process is writing to the index; the message names it."""


class DiskFullError(DualsearchError, OSError):
    """The disk (or the user's quota) filled up while a version was being written; nothing was
    published. The message names what was being written and the version still live."""


def is_disk_full(error: BaseException) -> bool:
    """True for the ways a full disk reaches us: the system's ``OSError`` (ENOSPC, EDQUOT), SQLite's
    "database or disk is full" and FAISS's ``RuntimeError`` quoting the system's message.

    Example:
        >>> import errno
        >>> is_disk_full(OSError(errno.ENOSPC, "No space left on device")), is_disk_full(OSError("other"))
        (True, False)
        >>> is_disk_full(RuntimeError("write error in x/index.faiss: 7541 != 49152 (No space left on device)"))
        True
    """
    import errno
    import sqlite3

    if isinstance(error, DiskFullError):
        return True
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(error, sqlite3.OperationalError):  # SQLITE_FULL; its message is all Python < 3.11 gives
        return "disk is full" in str(error)
    if isinstance(error, RuntimeError):  # FAISS's C++ I/O errors quote strerror(errno)
        return "No space left on device" in str(error) or "Disk quota exceeded" in str(error)
    return False


class MissingDependencyError(DualsearchError, ImportError):
    """An optional part of dualsearch is used without its extra installed; the message names the extra."""


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency, or raise :class:`MissingDependencyError` naming the extra.

    Example:
        >>> require("json", "core", "reading JSON").__name__
        'json'
        >>> require("no_such_module_here", "demo", "the demo")
        Traceback (most recent call last):
        ...
        dualsearch.errors.MissingDependencyError: the demo needs no_such_module_here: pip install 'dualsearch[demo]'
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(f"{purpose} needs {module}: pip install 'dualsearch[{extra}]'") from None
