"""The vectors file of an index version: every document vector, row-aligned, float32, ``(n, d)``.

This module is the one owner of its format (raw little-endian float32 rows, no header: the
dimension is in the manifest). Writers append chunk by chunk; readers memory-map it, so exact
search and re-training read it without holding it in memory, and a mapping opened before a newer
version replaced this one keeps working after the file is unlinked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dualsearch.index.layout import VECTORS_FILE


class VectorsWriter:
    """Append (c, d) float32 blocks to a version's vectors file.

    Example:
        >>> import tempfile
        >>> directory = Path(tempfile.mkdtemp())
        >>> with VectorsWriter(directory) as writer:
        ...     writer.append(np.eye(2, 4, dtype=np.float32))
        >>> open_vectors(directory, 4).shape
        (2, 4)
    """

    def __init__(self, version_dir: Path) -> None:
        self._handle = open(Path(version_dir) / VECTORS_FILE, "wb")

    def append(self, vectors: np.ndarray) -> None:
        self._handle.write(np.ascontiguousarray(vectors, dtype="<f4").tobytes())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> VectorsWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_vectors(version_dir: Path, dimension: int) -> np.ndarray:
    """The vectors of a version as a read-only memory map, (n, d) float32 (an empty array for none)."""
    path = Path(version_dir) / VECTORS_FILE
    if path.stat().st_size == 0:
        return np.zeros((0, dimension), np.float32)
    return np.memmap(path, dtype="<f4", mode="r").reshape(-1, dimension)
