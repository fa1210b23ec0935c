"""Answer queries from an index directory: :class:`Searcher`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from search import ann, layout
from search.encoder import DualEncoder
from search.errors import IndexMismatchError, InvalidInputError
from search.indexer import read_vectors
from search.manifest import Manifest
from search.store import DocumentStoreReader

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchResult:
    rank: int  # 1-based
    doc_id: str
    score: float  # cosine similarity between query and document vectors
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def check_towers(manifest: Manifest, encoder: DualEncoder, index_dir: Path) -> None:
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

    The version live when :meth:`open` ran stays in use, even if a re-index publishes a newer one,
    until :meth:`reload`.

    Example:
        >>> searcher = Searcher.open("my-index")  # doctest: +SKIP
        >>> [r.doc_id for r in searcher.search("green tea", k=2)]  # doctest: +SKIP
        ['tea-green', 'tea-black']
    """

    def __init__(self, index_dir: Path, version_dir: Path, manifest: Manifest, encoder: DualEncoder,
                 index: faiss.Index, store: DocumentStoreReader) -> None:
        self.index_dir, self.version_dir, self.manifest = index_dir, version_dir, manifest
        self.encoder, self._index, self._store = encoder, index, store
        self._vectors: np.ndarray | None = None  # mapped on the first exact search

    @classmethod
    def open(cls, index_dir: str | Path, encoder: DualEncoder | None = None, verify: bool = True) -> Searcher:
        """Open the live version of ``index_dir``.

        Args:
            index_dir: A directory written by :func:`search.indexer.build_index`.
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
            encoder = DualEncoder.load(manifest.model)
        check_towers(manifest, encoder, index_dir)
        index = faiss.read_index(str(version_dir / layout.INDEX_FILE))
        store = DocumentStoreReader(version_dir / layout.STORE_FILE)
        logger.info("opened %s: %d documents, %s", version_dir, manifest.document_count, manifest.factory)
        return cls(index_dir, version_dir, manifest, encoder, index, store)

    def reload(self) -> Searcher:
        """A searcher on the index's live version now, sharing these towers."""
        return Searcher.open(self.index_dir, encoder=self.encoder)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, query: str, k: int = 10, nprobe: int | None = None, exact: bool = False) -> list[SearchResult]:
        """The ``k`` documents closest to ``query`` (fewer if the index holds fewer).

        Args:
            query: Non-empty text.
            k: How many results, at least 1.
            nprobe: Inverted lists to visit (IVF only); default: the index's calibrated value.
            exact: Brute-force search over all stored vectors instead of the ANN index.
        """
        return self.search_batch([query], k=k, nprobe=nprobe, exact=exact)[0]

    def search_batch(self, queries: Sequence[str], k: int = 10, nprobe: int | None = None,
                     exact: bool = False, show_progress: bool = False) -> list[list[SearchResult]]:
        """:meth:`search` for many queries at once (encoded in batches)."""
        _check_arguments(queries, k, nprobe)
        vectors = self.encoder.encode_queries(queries, show_progress=show_progress)  # (m, d) float32
        scores, row_ids = self.search_vectors(vectors, k, nprobe, exact)
        return [self._results(row_scores, row_row_ids) for row_scores, row_row_ids in zip(scores, row_ids)]

    def search_vectors(self, vectors: np.ndarray, k: int, nprobe: int | None = None,
                       exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Raw search of (m, d) query vectors: scores and row ids, (m, k') each, -1 where nothing was found."""
        if exact:
            return self._exact_search(vectors, k)
        return ann.search_vectors(self._index, vectors, k, nprobe or self.manifest.default_nprobe or None)

    def _exact_search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._vectors is None:
            self._vectors = read_vectors(self.version_dir / layout.VECTORS_FILE, self.manifest.dimension)
        k = min(k, len(self._vectors))
        return faiss.knn(np.ascontiguousarray(vectors), np.asarray(self._vectors), k, metric=faiss.METRIC_INNER_PRODUCT)

    def _results(self, scores: np.ndarray, row_ids: np.ndarray) -> list[SearchResult]:
        hits = [(float(score), int(row_id)) for score, row_id in zip(scores, row_ids) if row_id >= 0]
        documents = self._store.fetch(row_id for _, row_id in hits)
        hits = [(score, row_id) for score, row_id in hits if row_id in documents]  # drop rows deleted since
        return [
            SearchResult(rank, documents[row_id].doc_id, score, documents[row_id].title, documents[row_id].text,
                         documents[row_id].metadata)
            for rank, (score, row_id) in enumerate(hits, start=1)
        ]

    def close(self) -> None:
        self._store.close()


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
