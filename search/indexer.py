"""Write index versions: stream documents, encode in chunks, train or reuse IVF, publish atomically.

One pipeline serves full builds and re-indexing. Memory stays bounded by one chunk of documents
plus the FAISS index: documents go to the SQLite store and vectors to a row-aligned file on disk as
they are encoded; training reads a seeded sample back and adding reads the file in blocks. When a
live version built by the same towers is given, documents whose content hash is unchanged copy
their vector from it instead of being encoded again. Encoded chunks are checkpointed
(:mod:`search.checkpoints`), so a killed run resumes without re-encoding them.
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

from corpora.document import Document
from corpora.records import FieldNames
from corpora.sources import read_corpus
from search import ann, layout
from search.checkpoints import ChunkCache
from search.errors import IndexBuildError, InvalidInputError
from search.failpoints import failpoint
from search.lock import IndexLock
from search.manifest import Manifest, library_versions, now_iso
from search.store import DocumentStoreReader, DocumentStoreWriter

logger = logging.getLogger(__name__)
ADD_BLOCK = 65_536  # vectors read back from disk per add_with_ids call
PSEUDO_QUERY_WORDS = 12


@dataclass(frozen=True)
class IndexConfig:
    """How to build an index.

    Attributes:
        factory: FAISS factory string; None means ``IVF,Flat`` with lists derived from the corpus.
        chunk_size: Documents read, encoded, checkpointed and written per step (bounds memory).
        seed: Seed of the training sample and of k-means.
        nprobe_target: Overlap@10 with exact search that the default nprobe must reach for
            pseudo-queries: the first ``PSEUDO_QUERY_WORDS`` words of sampled documents, encoded
            by the query tower. (Document vectors themselves find their neighbours far more easily
            than queries do; these pseudo-queries tracked real SciFact train and NFCorpus dev
            queries within 0.01-0.03 of overlap.)
        calibration_queries: How many sampled documents calibrate nprobe.
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


@dataclass(frozen=True)
class BuildReport:
    version_dir: Path
    document_count: int
    factory: str
    nlist: int
    default_nprobe: int
    encode_seconds: float
    index_seconds: float


class LiveVersion:
    """The version a re-index starts from: its documents' hashes, vectors and trained index."""

    def __init__(self, index_dir: Path) -> None:
        self.version_dir = layout.current_version_dir(index_dir)
        self.manifest = Manifest.read(self.version_dir)
        layout.verify_files(self.version_dir, self.manifest.files)  # never build on a damaged base
        self.store = DocumentStoreReader(self.version_dir / layout.STORE_FILE)
        self.vectors = read_vectors(self.version_dir / layout.VECTORS_FILE, self.manifest.dimension)

    def empty_trained_index(self) -> faiss.Index:
        """The live index emptied of vectors but keeping its trained centroids and codebooks."""
        index = faiss.read_index(str(self.version_dir / layout.INDEX_FILE))
        index.reset()
        return index

    def close(self) -> None:
        self.store.close()


def _chunks(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(documents)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _progress(show: bool, total: int | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not show, unit="doc", desc="indexing", dynamic_ncols=True)


def read_vectors(path: Path, dimension: int) -> np.ndarray:
    """Memory-map a row-aligned vectors file as (n, d) float32."""
    if path.stat().st_size == 0:
        return np.zeros((0, dimension), np.float32)
    return np.memmap(path, dtype=np.float32, mode="r").reshape(-1, dimension)


def _encode_cached(documents: list[Document], encoder, cache: ChunkCache, stats: VersionStats) -> np.ndarray:
    key = ChunkCache.key(documents)
    vectors = cache.load(key, encoder.dimension)
    if vectors is not None and len(vectors) == len(documents):
        stats.from_checkpoint += len(documents)
        return vectors
    vectors = encoder.encode_documents([d.encoding_text() for d in documents])  # (c, d) float32
    cache.save(key, vectors)
    return vectors


def _chunk_vectors(chunk: list[Document], encoder, live: LiveVersion | None, cache: ChunkCache,
                   stats: VersionStats) -> np.ndarray:
    """Vectors for one chunk: copied from the live version when unchanged, encoded otherwise."""
    known = live.store.lookup(d.id for d in chunk) if live is not None else {}
    reusable = live is not None and live.manifest.weights_sha256 == encoder.identity().weights_sha256
    vectors = np.empty((len(chunk), encoder.dimension), np.float32)  # (c, d)
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
        vectors[encode_positions] = _encode_cached([chunk[p] for p in encode_positions], encoder, cache, stats)
        stats.encoded += len(encode_positions)
    return vectors


def write_documents(documents: Iterable[Document], build_dir: Path, encoder, config: IndexConfig, cache: ChunkCache,
                    live: LiveVersion | None = None, show_progress: bool = False, total: int | None = None) -> VersionStats:
    """Fill ``build_dir`` with the store and the vectors of ``documents`` (row ids 0..n-1)."""
    stats, started = VersionStats(), time.perf_counter()
    store = DocumentStoreWriter(build_dir / layout.STORE_FILE)
    try:
        with open(build_dir / layout.VECTORS_FILE, "wb") as vectors_file, _progress(show_progress, total) as bar:
            for chunk in _chunks(documents, config.chunk_size):
                vectors = _chunk_vectors(chunk, encoder, live, cache, stats)
                store.add(range(stats.total - len(chunk), stats.total), chunk)
                vectors_file.write(vectors.tobytes())
                bar.update(len(chunk))
                bar.set_postfix(encoded=stats.encoded, refresh=False)
                failpoint("encoding")
    finally:
        store.close()
    stats.encode_seconds = time.perf_counter() - started
    return stats


def index_vectors(vectors: np.ndarray, config: IndexConfig, trained: faiss.Index | None = None,
                  factory: str | None = None, probes: np.ndarray | None = None) -> tuple[faiss.Index, ann.IndexPlan, int]:
    """Fill a FAISS index with (n, d) ``vectors`` under row ids 0..n-1; returns it, its plan and
    the calibrated default nprobe. ``trained`` (an emptied, already trained index) skips training.
    ``probes`` (m, d) are sample queries for calibration (default: sampled document vectors)."""
    count, dimension = vectors.shape
    if trained is not None:
        index, plan = trained, ann.IndexPlan(factory or "", ann.ivf_part(trained).nlist if ann.ivf_part(trained) else 0)
    else:
        plan = ann.plan_index(config.factory if factory is None else factory, count)
        sample = np.asarray(vectors[ann.training_sample(count, plan.nlist, config.seed)])
        index = ann.train_index(plan, dimension, sample, config.seed)
    for start in range(0, count, ADD_BLOCK):
        block = np.asarray(vectors[start:start + ADD_BLOCK])
        ann.add_vectors(index, block, np.arange(start, start + len(block)))
    if ann.ivf_part(index) is None:
        return index, plan, 0
    if probes is None:
        probes = np.asarray(vectors[calibration_rows(count, config)])
    _, exact_ids = faiss.knn(probes, np.asarray(vectors), min(10, count), metric=faiss.METRIC_INNER_PRODUCT)
    return index, plan, ann.calibrate_nprobe(index, probes, exact_ids, config.nprobe_target)


def calibration_rows(count: int, config: IndexConfig) -> np.ndarray:
    rng = np.random.default_rng(config.seed + 1)
    return np.sort(rng.choice(count, min(config.calibration_queries, count), replace=False))


def pseudo_queries(build_dir: Path, encoder, count: int, config: IndexConfig) -> np.ndarray:
    """Query-tower vectors of the opening words of sampled documents: (m, d) float32."""
    store = DocumentStoreReader(build_dir / layout.STORE_FILE)
    try:
        documents = store.fetch(calibration_rows(count, config).tolist())
    finally:
        store.close()
    texts = [" ".join(d.text.split()[:PSEUDO_QUERY_WORDS]) for _, d in sorted(documents.items())]
    return encoder.encode_queries(texts)


def finish_version(index_dir: Path, build_dir: Path, encoder, config: IndexConfig, stats: VersionStats,
                   corpus_name: str, live: LiveVersion | None = None) -> Path:
    """Index the written vectors (reusing ``live``'s centroids unless ``stats.retrained``), write
    the manifest and publish. Returns the new version directory."""
    if stats.total == 0:
        raise IndexBuildError(f"corpus {corpus_name or '(given)'} has no documents")
    started = time.perf_counter()
    vectors = read_vectors(build_dir / layout.VECTORS_FILE, encoder.dimension)
    reuse = live if live is not None and not stats.retrained else None
    probes = pseudo_queries(build_dir, encoder, stats.total, config)
    index, plan, nprobe = index_vectors(vectors, config, reuse.empty_trained_index() if reuse else None,
                                        reuse.manifest.factory if reuse else None, probes)
    faiss.write_index(index, str(build_dir / layout.INDEX_FILE))
    failpoint("writing")
    stats.index_seconds = time.perf_counter() - started
    logger.info("indexed %d vectors with %s in %.1fs (%s), default nprobe %d", stats.total, plan.factory,
                stats.index_seconds, "trained" if reuse is None else "centroids kept", nprobe)
    _manifest(build_dir, encoder, plan, nprobe, stats, corpus_name, config, reuse).write(build_dir)
    return layout.publish(index_dir, build_dir)


def _manifest(build_dir, encoder, plan, nprobe, stats: VersionStats, corpus_name, config, reuse) -> Manifest:
    identity = encoder.identity()
    files = {name: layout.file_checksum(build_dir / name) for name in (layout.INDEX_FILE, layout.STORE_FILE, layout.VECTORS_FILE)}
    previous = reuse.manifest if reuse is not None else None
    return Manifest(
        model=identity.model, weights_sha256=identity.weights_sha256, routes=list(identity.routes),
        dimension=identity.dimension, factory=plan.factory, nlist=plan.nlist, default_nprobe=nprobe,
        document_count=stats.total, next_row_id=stats.total, corpus=corpus_name, files=files,
        trained_count=previous.trained_count if previous else stats.total,
        trained_at=previous.trained_at if previous else now_iso(),
        added_since_training=(previous.added_since_training if previous else 0) + (stats.encoded if previous else 0),
        library_versions=library_versions(), created=now_iso(),
        build={"requested_factory": config.factory if previous is None else previous.build.get("requested_factory"),
               "seed": config.seed, "chunk_size": config.chunk_size, "batch_size": encoder.batch_size,
               "nprobe_target": config.nprobe_target, "encode_seconds": round(stats.encode_seconds, 3),
               "index_seconds": round(stats.index_seconds, 3)},
    )


def build_index(
    documents: Iterable[Document], index_dir: str | Path, encoder, config: IndexConfig | None = None,
    corpus_name: str = "", show_progress: bool = False, total: int | None = None,
) -> BuildReport:
    """Encode ``documents`` with the document tower and publish a new index version in ``index_dir``.

    Holds the index's writer lock. Nothing is visible until the whole version is written; on any
    error (a bad record halfway through, FAISS refusing the factory) the partial build is removed
    and the live version, if any, is untouched. Chunks encoded before a crash are reused by the
    next run.

    Example:
        >>> from corpora.sources import read_corpus
        >>> report = build_index(read_corpus("tiny"), "/tmp/tiny-index", DualEncoder.load())  # doctest: +SKIP
        >>> report.document_count  # doctest: +SKIP
        26
    """
    config = config or IndexConfig()
    index_dir = Path(index_dir)
    layout.check_writable(index_dir)
    with IndexLock(index_dir):
        layout.remove_stale_builds(index_dir)
        build_dir = layout.prepare_build_dir(index_dir)
        cache = ChunkCache(index_dir, encoder.identity().weights_sha256)
        try:
            stats = write_documents(documents, build_dir, encoder, config, cache, None, show_progress, total)
            logger.info("encoded %d documents in %.1fs (%d from checkpoints)", stats.encoded, stats.encode_seconds, stats.from_checkpoint)
            version_dir = finish_version(index_dir, build_dir, encoder, config, stats, corpus_name)
        except BaseException:
            layout.discard(build_dir)
            raise
        cache.clear()
    manifest = Manifest.read(version_dir)
    logger.info("published %s", version_dir)
    return BuildReport(version_dir, manifest.document_count, manifest.factory, manifest.nlist, manifest.default_nprobe,
                       stats.encode_seconds, stats.index_seconds)


def validate_corpus(source: str | Path, fields: FieldNames | None = None, skip_invalid: bool = False) -> tuple[int, list[str]]:
    """Read a whole corpus once, before anything is encoded: returns (valid documents, skipped
    records' messages). Without ``skip_invalid`` the first bad record raises here."""
    skipped: list[str] = []
    on_invalid = (lambda error: skipped.append(str(error))) if skip_invalid else None
    count = sum(1 for _ in read_corpus(source, fields, on_invalid))
    for message in skipped:
        logger.warning("skipping invalid record: %s", message)
    return count, skipped


def index_corpus(source: str | Path, index_dir: str | Path, encoder, fields: FieldNames | None = None,
                 config: IndexConfig | None = None, skip_invalid: bool = False,
                 show_progress: bool = False) -> tuple[BuildReport, list[str]]:
    """Validate and count a corpus, then build its index: a bad record stops the run before any
    encoding (or, with ``skip_invalid``, is skipped and reported), and progress shows time left.

    Returns the build report and the skipped records' messages.
    """
    total, skipped = validate_corpus(source, fields, skip_invalid)
    documents = read_corpus(source, fields, (lambda error: None) if skip_invalid else None)
    report = build_index(documents, index_dir, encoder, config, corpus_name=str(source), show_progress=show_progress, total=total)
    return report, skipped
