"""The one "write a version" transaction: :class:`VersionWriter`.

Building an index and every re-index operation write the same way: stream documents in chunks
into a hidden build directory beside the live version (the SQLite store and the vectors file,
row ids 0..n-1), copy the vectors of documents unchanged since ``live`` instead of encoding them
again, checkpoint encoded chunks (:mod:`dualsearch.checkpoints`) so a killed run resumes, then
index the vectors (reusing the live centroids unless told to retrain), write the manifest and
publish atomically (:mod:`dualsearch.layout`). Any error, or leaving the ``with`` block without
publishing, removes the build directory and leaves the live version untouched. Call it while
holding the writer lock (:class:`dualsearch.lock.IndexLock`).

Memory stays bounded by one chunk of documents plus the FAISS index.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import faiss
import numpy as np

from dualsearch import layout
from dualsearch.ann_build import index_vectors, pseudo_queries
from dualsearch.checkpoints import ChunkCache
from dualsearch.corpora.document import Document
from dualsearch.errors import IndexBuildError
from dualsearch.failpoints import failpoint
from dualsearch.index_config import IndexConfig
from dualsearch.manifest import Manifest, library_versions, now_iso
from dualsearch.protocols import Encoder
from dualsearch.store import DocumentStoreReader, DocumentStoreWriter
from dualsearch.vectors import VectorsWriter, open_vectors

logger = logging.getLogger(__name__)


@dataclass
class VersionStats:
    """What writing one version did."""

    counts: Counter = field(default_factory=Counter)  # added / updated / unchanged documents
    encoded: int = 0  # documents run through the document tower (or taken from a checkpoint)
    from_checkpoint: int = 0  # of those, documents whose vectors a killed run had already encoded
    encode_seconds: float = 0.0
    index_seconds: float = 0.0
    retrained: bool = True

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class LiveVersion:
    """The version a re-index starts from: its documents' hashes, vectors and trained index."""

    def __init__(self, index_dir: Path) -> None:
        self.version_dir = layout.current_version_dir(index_dir)
        self.manifest = Manifest.read(self.version_dir)
        layout.verify_files(self.version_dir, self.manifest.files)  # never build on a damaged base
        self.store = DocumentStoreReader(self.version_dir / layout.STORE_FILE)
        self.vectors = open_vectors(self.version_dir, self.manifest.dimension)  # (n, d) float32, mapped

    def empty_trained_index(self) -> faiss.Index:
        """The live index emptied of vectors but keeping its trained centroids and codebooks."""
        index = faiss.read_index(str(self.version_dir / layout.INDEX_FILE))
        index.reset()
        return index

    def close(self) -> None:
        self.store.close()


class VersionWriter:
    """Write the next version of ``index_dir`` and publish it, or leave nothing behind.

    Example:
        >>> from dualsearch.corpora.sources import read_corpus
        >>> from dualsearch.testing import FakeEncoder
        >>> import tempfile
        >>> index_dir = Path(tempfile.mkdtemp()) / "index"
        >>> with VersionWriter(index_dir, FakeEncoder(), IndexConfig(factory="Flat")) as writer:
        ...     stats = writer.write(read_corpus("tiny"))
        ...     version_dir = writer.publish("tiny")
        >>> version_dir.name, stats.total
        ('v000001', 26)
    """

    def __init__(
        self, index_dir: str | Path, encoder: Encoder, config: IndexConfig, live: LiveVersion | None = None
    ) -> None:
        self.index_dir, self.encoder, self.config, self.live = Path(index_dir), encoder, config, live
        self.stats = VersionStats()
        self.build_dir: Path | None = None
        self.cache = ChunkCache(self.index_dir, encoder.identity().weights_sha256)

    def __enter__(self) -> VersionWriter:
        layout.remove_stale_builds(self.index_dir)
        self.build_dir = layout.prepare_build_dir(self.index_dir)
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        layout.discard(self.build_dir)  # already renamed into place if published
        if exc_type is None:
            self.cache.clear()

    def write(
        self, documents: Iterable[Document], show_progress: bool = False, total: int | None = None
    ) -> VersionStats:
        """Store ``documents`` and their vectors in the build directory (row ids 0..n-1)."""
        stats, started = self.stats, time.perf_counter()
        store = DocumentStoreWriter(self.build_dir / layout.STORE_FILE)
        try:
            with VectorsWriter(self.build_dir) as vectors_file, _progress(show_progress, total) as bar:
                for chunk in _chunks(documents, self.config.chunk_size):
                    vectors = self._chunk_vectors(chunk)
                    store.add(range(stats.total - len(chunk), stats.total), chunk)
                    vectors_file.append(vectors)
                    bar.update(len(chunk))
                    bar.set_postfix(encoded=stats.encoded, refresh=False)
                    failpoint("encoding")
        finally:
            store.close()
        stats.encode_seconds = time.perf_counter() - started
        logger.info(
            "encoded %d documents in %.1fs (%d from checkpoints)",
            stats.encoded,
            stats.encode_seconds,
            stats.from_checkpoint,
        )
        return stats

    def publish(self, corpus_name: str = "", retrain: bool = True) -> Path:
        """Index the written vectors (keeping the live version's centroids unless ``retrain``), write
        the manifest and switch ``CURRENT`` to the new version. Returns the version directory."""
        stats, live = self.stats, self.live
        stats.retrained = retrain or live is None
        if stats.total == 0:
            raise IndexBuildError(f"corpus {corpus_name or '(given)'} has no documents")
        started = time.perf_counter()
        vectors = open_vectors(self.build_dir, self.encoder.dimension)  # (n, d) float32
        reuse = None if stats.retrained else live
        probes = pseudo_queries(self.build_dir, self.encoder, stats.total, self.config)
        index, plan, nprobe = index_vectors(
            vectors,
            self.config,
            reuse.empty_trained_index() if reuse else None,
            reuse.manifest.factory if reuse else None,
            probes,
        )
        faiss.write_index(index, str(self.build_dir / layout.INDEX_FILE))
        failpoint("writing")
        stats.index_seconds = time.perf_counter() - started
        logger.info(
            "indexed %d vectors with %s in %.1fs (%s), default nprobe %d",
            stats.total,
            plan.factory,
            stats.index_seconds,
            "trained" if reuse is None else "centroids kept",
            nprobe,
        )
        self._manifest(plan, nprobe, corpus_name, reuse).write(self.build_dir)
        return layout.publish(self.index_dir, self.build_dir)

    def _chunk_vectors(self, chunk: list[Document]) -> np.ndarray:
        """Vectors for one chunk: copied from the live version when unchanged, encoded otherwise."""
        live, stats = self.live, self.stats
        known = live.store.lookup(d.id for d in chunk) if live is not None else {}
        reusable = live is not None and live.manifest.weights_sha256 == self.encoder.identity().weights_sha256
        vectors = np.empty((len(chunk), self.encoder.dimension), np.float32)  # (c, d)
        copy_positions, copy_rows, encode_positions = [], [], []
        for position, document in enumerate(chunk):
            hit = known.get(document.id)
            kind = "added" if hit is None else "unchanged" if hit[1] == document.content_hash() else "updated"
            stats.counts[kind] += 1
            if kind == "unchanged" and reusable:
                copy_positions.append(position)
                copy_rows.append(hit[0])
            else:
                encode_positions.append(position)
        if copy_positions:
            vectors[copy_positions] = live.vectors[np.asarray(copy_rows)]
        if encode_positions:
            vectors[encode_positions] = self._encode_cached([chunk[p] for p in encode_positions])
            stats.encoded += len(encode_positions)
        return vectors

    def _encode_cached(self, documents: list[Document]) -> np.ndarray:
        key = ChunkCache.key(documents)
        vectors = self.cache.load(key, self.encoder.dimension)
        if vectors is not None and len(vectors) == len(documents):
            self.stats.from_checkpoint += len(documents)
            return vectors
        vectors = self.encoder.encode_documents([d.encoding_text() for d in documents])  # (c, d) float32
        self.cache.save(key, vectors)
        return vectors

    def _manifest(self, plan, nprobe: int, corpus_name: str, reuse: LiveVersion | None) -> Manifest:
        identity, stats, config = self.encoder.identity(), self.stats, self.config
        files = {
            name: layout.file_checksum(self.build_dir / name)
            for name in (layout.INDEX_FILE, layout.STORE_FILE, layout.VECTORS_FILE)
        }
        previous = self.live.manifest if self.live is not None else None
        kept = reuse.manifest if reuse is not None else None
        return Manifest(
            model=identity.model,
            weights_sha256=identity.weights_sha256,
            routes=list(identity.routes),
            dimension=identity.dimension,
            factory=plan.factory,
            nlist=plan.nlist,
            default_nprobe=nprobe,
            document_count=stats.total,
            corpus=corpus_name or (previous.corpus if previous else ""),
            files=files,
            trained_count=kept.trained_count if kept else stats.total,
            trained_at=kept.trained_at if kept else now_iso(),
            added_since_training=kept.added_since_training + stats.encoded if kept else 0,
            library_versions=library_versions(),
            created=now_iso(),
            build={
                "requested_factory": kept.build.get("requested_factory") if kept else config.factory,
                "seed": config.seed,
                "chunk_size": config.chunk_size,
                "batch_size": self.encoder.batch_size,
                "nprobe_target": config.nprobe_target,
                "encode_seconds": round(stats.encode_seconds, 3),
                "index_seconds": round(stats.index_seconds, 3),
            },
        )


def _chunks(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(documents)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _progress(show: bool, total: int | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not show, unit="doc", desc="indexing", dynamic_ncols=True)
