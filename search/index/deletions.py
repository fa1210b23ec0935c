"""A segment's deleted document rows as of one version: one small immutable ``.npy`` file per
segment and version that deleted from it (docs/segments.md).

A later version that deletes more from the same segment writes a new file holding every deleted row
so far; a file is never changed, so the versions a reader may still hold keep theirs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dualsearch.errors import IndexCorruptError


def deletion_file_name(version_name: str) -> str:
    """The name of a segment's deletion file written by version ``version_name``.

    Example:
        >>> deletion_file_name("v000007")
        'deleted-v000007.npy'
    """
    return f"deleted-{version_name}.npy"


def write_deletions(path: Path, rows: Iterable[int]) -> np.ndarray:
    """Write the sorted, distinct ``rows`` to ``path``; returns them, (d,) int64."""
    deleted = np.unique(np.fromiter((int(row) for row in rows), np.int64))
    with path.open("wb") as handle:
        np.save(handle, deleted, allow_pickle=False)
    return deleted


def read_deletions(path: Path, document_count: int) -> np.ndarray:
    """The deleted rows in ``path``, checked against the segment's ``document_count``: (d,) int64.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / deletion_file_name("v000002")
        >>> write_deletions(path, [5, 1, 5]).tolist(), read_deletions(path, 10).tolist()
        ([1, 5], [1, 5])
    """
    try:
        deleted = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise IndexCorruptError(f"{path}: the deleted rows cannot be read ({error})") from None
    sorted_distinct = deleted.ndim == 1 and (len(deleted) < 2 or bool(np.all(np.diff(deleted) > 0)))
    if deleted.dtype != np.int64 or not sorted_distinct:
        raise IndexCorruptError(f"{path}: the deleted rows are not sorted distinct int64 rows")
    if len(deleted) and (deleted[0] < 0 or deleted[-1] >= document_count):
        raise IndexCorruptError(f"{path}: a deleted row lies outside the segment's {document_count} documents")
    return deleted
