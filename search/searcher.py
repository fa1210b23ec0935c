"""Answer queries from an index directory: :class:`Searcher`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from dualsearch import ann, layout
from dualsearch.defaults import K
from dualsearch.errors import IndexMismatchError, InvalidInputError, SearchFailedError
from dualsearch.manifest import Manifest
from dualsearch.protocols import Encoder
from dualsearch.store import DocumentStoreReader
from dualsearch.vectors import open_vectors

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchResult:
    rank: int  # 1-based
    doc_id: str
    score: float  # cosine similarity between query and document vectors
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def check_towers(manifest: Manifest, encoder: Encoder, index_dir: Path) -> None:
    """Refuse towers other than the ones that encoded the index's documents."""
    identity = encoder.identity()
    if identity.dimension != manifest.dimension or identity.weights_sha256 != manifest.weights_sha256:
        raise IndexMismatchError(
            f"{index_dir} was built with towers {manifest.model!r} (weights sha256 {manifest.weights_sha256[:12]}, "
            f"dimension {manifest.dimension}); the towers given are {identity.model!r} "
            f"(weights sha256 {identity.weights_sha256[:12]}, dimension {identity.dimension}). "
            "Open it with the towers that built it, or re-index"
        )


class Searcher:
    """Search one version of an index directory.

    The version live when :meth:`open` ran stays in use, even if a re-index publishes a newer one
    (its files are held open, so they stay readable after a newer publish removes them), until
    :meth:`reload`. A searcher is a context manager; :meth:`close` releases what it holds.

    Example:
        >>> import tempfile
        >>> from dualsearch.indexer import index_corpus
        >>> from dualsearch.testing import FakeEncoder
        >>> index_dir = Path(tempfile.mkdtemp()) / "index"
        >>> _ = index_corpus("tiny", index_dir, FakeEncoder())
        >>> with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        ...     print(searcher.search("green tea", k=1)[0].doc_id)
        tea-green
    """

    def __init__(
        self,
        index_dir: Path,
        version_dir: Path,
        manifest: Manifest,
        encoder: Encoder,
        index: faiss.Index,
        store: DocumentStoreReader,
        vectors: np.ndarray,
    ) -> None:
        self.index_dir, self.version_dir, self.manifest = index_dir, version_dir, manifest
        self.encoder, self._index, self._store, self._vectors = encoder, index, store, vectors
        self._closed = False

    @classmethod
    def open(cls, index_dir: str | Path, encoder: Encoder | None = None, verify: bool = True) -> Searcher:
        """Open the live version of ``index_dir``.

        Args:
            index_dir: A directory written by :func:`dualsearch.indexer.build_index`.
            encoder: Towers to encode queries; by default the ones named in the manifest are loaded.
            verify: Check every file against its sha256 in the manifest (sizes are always checked).

        Raises:
            IndexNotFoundError: no index there. IndexCorruptError: a damaged file.
            IndexMismatchError: ``encoder`` is not the towers that built the index.
        """
        index_dir = Path(index_dir)
        version_dir = layout.current_version_dir(index_dir)
        manifest = Manifest.read(version_dir)
        layout.verify_files(version_dir, manifest.files, full=verify)
        if encoder is None:
            from dualsearch.encoder import DualEncoder

            encoder = DualEncoder.load(manifest.model)
        check_towers(manifest, encoder, index_dir)
        index = faiss.read_index(str(version_dir / layout.INDEX_FILE))
        store = DocumentStoreReader(version_dir / layout.STORE_FILE)
        vectors = open_vectors(version_dir, manifest.dimension)  # (n, d) float32, mapped: exact search
        logger.info("opened %s: %d documents, %s", version_dir, manifest.document_count, manifest.factory)
        return cls(index_dir, version_dir, manifest, encoder, index, store, vectors)

    def reload(self) -> Searcher:
        """A searcher on the index's live version now, sharing these towers; this one is closed."""
        fresh = Searcher.open(self.index_dir, encoder=self.encoder)
        self.close()
        return fresh

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __len__(self) -> int:
        return self.manifest.document_count

    def search(self, query: str, k: int = K, nprobe: int | None = None, exact: bool = False) -> list[SearchResult]:
        """The ``k`` documents closest to ``query`` (fewer if the index holds fewer).

        Args:
            query: Non-empty text.
            k: How many results, at least 1.
            nprobe: Inverted lists to visit (IVF only); default: the index's calibrated value.
            exact: Brute-force search over all stored vectors instead of the ANN index.
        """
        return self.search_batch([query], k=k, nprobe=nprobe, exact=exact)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = K,
        nprobe: int | None = None,
        exact: bool = False,
        show_progress: bool = False,
    ) -> list[list[SearchResult]]:
        """:meth:`search` for many queries at once (encoded in batches)."""
        _check_arguments(queries, k, nprobe)
        self._check_open()
        vectors = self.encoder.encode_queries(queries, show_progress=show_progress)  # (m, d) float32
        scores, row_ids = self.search_vectors(vectors, k, nprobe, exact)
        return [self._results(row_scores, row_row_ids) for row_scores, row_row_ids in zip(scores, row_ids)]

    def search_vectors(
        self, vectors: np.ndarray, k: int, nprobe: int | None = None, exact: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw search of (m, d) query vectors: scores and row ids, (m, k') each, -1 where nothing was found."""
        self._check_open()
        if exact:
            return self._exact_search(vectors, k)
        return ann.search_vectors(self._index, vectors, k, nprobe or self.manifest.default_nprobe or None)

    def _exact_search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self._vectors))
        return faiss.knn(np.ascontiguousarray(vectors), np.asarray(self._vectors), k, metric=faiss.METRIC_INNER_PRODUCT)

    def _results(self, scores: np.ndarray, row_ids: np.ndarray) -> list[SearchResult]:
        hits = [(float(score), int(row_id)) for score, row_id in zip(scores, row_ids) if row_id >= 0]
        documents = self._store.fetch(row_id for _, row_id in hits)
        hits = [(score, row_id) for score, row_id in hits if row_id in documents]  # drop rows deleted since
        return [
            SearchResult(
                rank,
                documents[row_id].doc_id,
                score,
                documents[row_id].title,
                documents[row_id].text,
                documents[row_id].metadata,
            )
            for rank, (score, row_id) in enumerate(hits, start=1)
        ]

    def close(self) -> None:
        """Release the store, the FAISS index and the vectors mapping (closing twice is harmless)."""
        if not self._closed:
            self._closed = True
            self._store.close()
            self._index, self._vectors = None, None

    def _check_open(self) -> None:
        if self._closed:
            raise SearchFailedError(f"this searcher of {self.index_dir} is closed (after close() or reload())")


def _check_arguments(queries: Sequence[str], k: int, nprobe: int | None) -> None:
    if isinstance(queries, str):
        raise InvalidInputError("search_batch takes a list of queries, not one string")
    if not queries:
        raise InvalidInputError("no queries given")
    for query in queries:
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError(f"empty query: {query!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k must be a whole number of at least 1, got {k!r}")
    if nprobe is not None and (isinstance(nprobe, bool) or not isinstance(nprobe, (int, np.integer)) or nprobe < 1):
        raise InvalidInputError(f"nprobe must be a whole number of at least 1, got {nprobe!r}")
