"""The exceptions dualsearch raises on purpose.

Every error a user can cause derives from :class:`SearchError`, and also from the builtin a Python
caller would expect (``ValueError``, ``FileNotFoundError``), so both ``except SearchError`` and
``except ValueError`` work. The CLI prints ``str(error)`` on one line and exits non-zero.
"""

from __future__ import annotations


class SearchError(Exception):
    """Base class of every error dualsearch raises on purpose."""


class InvalidInputError(SearchError, ValueError):
    """An argument is out of range or malformed (an empty query, ``k < 1``, an unknown option)."""


class CorpusError(SearchError, ValueError):
    """A corpus record is unusable. The message names the source and the line or record."""


class CorpusNotFoundError(SearchError, FileNotFoundError):
    """A corpus path does not exist or holds nothing we can read."""


class IndexNotFoundError(SearchError, FileNotFoundError):
    """An index directory does not exist or is not a dualsearch index."""


class IndexMismatchError(SearchError, ValueError):
    """An index was built with other towers (or another format) than the ones offered to open it."""


class IndexBuildError(SearchError, ValueError):
    """FAISS refused to build the requested index (we translate its C++ errors into this)."""


class IndexCorruptError(SearchError, ValueError):
    """A file of an index directory is missing, truncated or altered."""


class ModelError(SearchError, ValueError):
    """Tower weights cannot be loaded or do not match their expected checksum."""


class IndexLockedError(SearchError, RuntimeError):
    """Another process is writing to the index; the message names it."""
