"""Build an index directory from a corpus: stream, encode in chunks, train IVF, publish atomically.

Memory stays bounded by one chunk of documents plus the FAISS index: documents go to the SQLite
store and vectors to a row-aligned file on disk as they are encoded; training reads a seeded sample
back and adding reads the file chunk by chunk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import faiss
import numpy as np

from corpora.document import Document
from search import ann, layout
from search.encoder import DualEncoder
from search.errors import IndexBuildError, InvalidInputError
from search.manifest import Manifest, library_versions, now_iso
from search.store import DocumentStoreWriter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexConfig:
    """How to build an index.

    Attributes:
        factory: FAISS factory string; None means ``IVF,Flat`` with lists derived from the corpus.
        chunk_size: Documents read, encoded and written per step (bounds memory).
        seed: Seed of the training sample and of k-means.
        nprobe_target: Overlap@10 with exact search that the default nprobe must reach on sampled
            document vectors (set on SciFact train queries; see bench/engine.py).
        calibration_queries: How many sampled vectors calibrate nprobe.
    """

    factory: str | None = None
    chunk_size: int = 256
    seed: int = 0
    nprobe_target: float = 0.99
    calibration_queries: int = 256

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise InvalidInputError(f"chunk_size must be at least 1, got {self.chunk_size}")
        if not 0 < self.nprobe_target <= 1:
            raise InvalidInputError(f"nprobe_target must be in (0, 1], got {self.nprobe_target}")
        if self.calibration_queries < 1:
            raise InvalidInputError(f"calibration_queries must be at least 1, got {self.calibration_queries}")


@dataclass(frozen=True)
class BuildReport:
    version_dir: Path
    document_count: int
    factory: str
    nlist: int
    default_nprobe: int
    encode_seconds: float
    index_seconds: float


def _chunks(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(documents)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _progress(show: bool, total: int | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not show, unit="doc", desc="encoding", dynamic_ncols=True)


def encode_to_disk(
    documents: Iterable[Document], encoder: DualEncoder, build_dir: Path, config: IndexConfig,
    show_progress: bool = False, total: int | None = None,
) -> int:
    """Write documents to the store and their vectors to ``vectors.f32``; returns the count."""
    store = DocumentStoreWriter(build_dir / layout.STORE_FILE)
    count = 0
    try:
        with open(build_dir / layout.VECTORS_FILE, "wb") as vectors_file, _progress(show_progress, total) as bar:
            for chunk in _chunks(documents, config.chunk_size):
                vectors = encoder.encode_documents([d.encoding_text() for d in chunk])  # (c, d) float32
                store.add(range(count, count + len(chunk)), chunk)
                vectors_file.write(vectors.tobytes())
                count += len(chunk)
                bar.update(len(chunk))
    finally:
        store.close()
    return count


def read_vectors(path: Path, dimension: int) -> np.ndarray:
    """Memory-map a row-aligned vectors file as (n, d) float32."""
    if path.stat().st_size == 0:
        return np.zeros((0, dimension), np.float32)
    return np.memmap(path, dtype=np.float32, mode="r").reshape(-1, dimension)


def index_vectors(vectors: np.ndarray, config: IndexConfig) -> tuple[faiss.Index, ann.IndexPlan, int]:
    """Train and fill the FAISS index for (n, d) ``vectors`` whose row ids are their positions."""
    count, dimension = vectors.shape
    plan = ann.plan_index(config.factory, count)
    sample = vectors[ann.training_sample(count, plan.nlist, config.seed)]
    index = ann.train_index(plan, dimension, sample, config.seed)
    for start in range(0, count, 65_536):
        block = vectors[start:start + 65_536]
        ann.add_vectors(index, block, np.arange(start, start + len(block)))
    return index, plan, _calibrated_nprobe(index, vectors, config)


def _calibrated_nprobe(index: faiss.Index, vectors: np.ndarray, config: IndexConfig) -> int:
    if ann.ivf_part(index) is None:
        return 0
    rng = np.random.default_rng(config.seed + 1)
    probes = np.asarray(vectors[np.sort(rng.choice(len(vectors), min(config.calibration_queries, len(vectors)), replace=False))])
    _, exact_ids = faiss.knn(probes, np.asarray(vectors), min(10, len(vectors)), metric=faiss.METRIC_INNER_PRODUCT)
    return ann.calibrate_nprobe(index, probes, exact_ids, config.nprobe_target)


def build_index(
    documents: Iterable[Document], index_dir: str | Path, encoder: DualEncoder,
    config: IndexConfig | None = None, corpus_name: str = "", show_progress: bool = False, total: int | None = None,
) -> BuildReport:
    """Encode ``documents`` with the document tower and publish a new index version in ``index_dir``.

    Nothing is visible until the whole version is written; on any error (a bad record halfway
    through, FAISS refusing the factory) the partial build is removed and the live version, if any,
    is untouched.

    Example:
        >>> from corpora.sources import read_corpus
        >>> report = build_index(read_corpus("tiny"), "/tmp/tiny-index", DualEncoder.load())  # doctest: +SKIP
        >>> report.document_count  # doctest: +SKIP
        26
    """
    config = config or IndexConfig()
    build_dir = layout.prepare_build_dir(index_dir)
    try:
        started = time.perf_counter()
        count = encode_to_disk(documents, encoder, build_dir, config, show_progress, total)
        encoded = time.perf_counter()
        if count == 0:
            raise IndexBuildError(f"corpus {corpus_name or '(given)'} has no documents")
        logger.info("encoded %d documents in %.1fs (%.0f docs/s)", count, encoded - started, count / max(encoded - started, 1e-9))
        index, plan, nprobe = index_vectors(read_vectors(build_dir / layout.VECTORS_FILE, encoder.dimension), config)
        faiss.write_index(index, str(build_dir / layout.INDEX_FILE))
        indexed = time.perf_counter()
        logger.info("built %s over %d vectors in %.1fs, default nprobe %d", plan.factory, count, indexed - encoded, nprobe)
        _write_manifest(build_dir, encoder, plan, nprobe, count, corpus_name, config, encoded - started, indexed - encoded)
        version_dir = layout.publish(index_dir, build_dir)
    except BaseException:
        layout.discard(build_dir)
        raise
    logger.info("published %s", version_dir)
    return BuildReport(version_dir, count, plan.factory, plan.nlist, nprobe, encoded - started, indexed - encoded)


def _write_manifest(build_dir, encoder, plan, nprobe, count, corpus_name, config, encode_s, index_s) -> None:
    identity = encoder.identity()
    files = {name: layout.file_checksum(build_dir / name) for name in (layout.INDEX_FILE, layout.STORE_FILE, layout.VECTORS_FILE)}
    Manifest(
        model=identity.model, weights_sha256=identity.weights_sha256, routes=list(identity.routes),
        dimension=identity.dimension, factory=plan.factory, nlist=plan.nlist, default_nprobe=nprobe,
        document_count=count, next_row_id=count, corpus=corpus_name, files=files,
        library_versions=library_versions(), created=now_iso(),
        build={"seed": config.seed, "chunk_size": config.chunk_size, "batch_size": encoder.batch_size,
               "nprobe_target": config.nprobe_target, "encode_seconds": round(encode_s, 3), "index_seconds": round(index_s, 3)},
    ).write(build_dir)
