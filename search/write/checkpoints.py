"""Encoded chunks kept on disk while a build runs, so a killed build resumes without re-encoding.

A chunk is keyed by the towers' weights hash and the (id, content hash) of its documents, so a
rerun reuses exactly the chunks whose documents and towers are unchanged, whatever else changed.
The cache lives in ``DIR/.chunks`` and is emptied once a version is published.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from dualsearch.corpora.document import Document

CACHE_NAME = ".chunks"


class ChunkCache:
    def __init__(self, index_dir: str | Path, weights_sha256: str, passages: str = "") -> None:
        """``passages`` names the passage settings: vectors of other settings are other vectors."""
        self.root = Path(index_dir) / CACHE_NAME
        self.directory = self.root / (weights_sha256[:16] + (f"-{passages}" if passages else ""))
        self.hits = 0

    @staticmethod
    def key(documents: list[Document]) -> str:
        digest = hashlib.sha256()
        for document in documents:
            digest.update(f"{document.id}\0{document.content_hash()}\n".encode())
        return digest.hexdigest()

    def load(self, key: str, dimension: int) -> np.ndarray | None:
        path = self.directory / f"{key}.npy"
        try:
            vectors = np.load(path)
        except (OSError, ValueError):  # absent, or torn by a crash mid-write (we rename, so rare)
            return None
        if vectors.ndim != 2 or vectors.shape[1] != dimension or vectors.dtype != np.float32:
            return None
        self.hits += 1
        return vectors

    def save(self, key: str, vectors: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f".{key}.{os.getpid()}.tmp.npy"
        np.save(temporary, vectors)
        os.replace(temporary, self.directory / f"{key}.npy")  # a reader sees a whole chunk or none

    def clear(self) -> None:
        discard_checkpoints(self.root.parent)


def discard_checkpoints(index_dir: str | Path) -> None:
    """Remove every checkpointed chunk of ``index_dir`` (once a version is published they are of no use)."""
    shutil.rmtree(Path(index_dir) / CACHE_NAME, ignore_errors=True)
