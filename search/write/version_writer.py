"""The one "write a version" transaction: :class:`VersionWriter`.

A version is a list of immutable segments with their deleted rows (docs/segments.md). Building an
index and every write go the same way: stream documents in chunks into a new segment's hidden build
directory (the SQLite store and the vectors file, rows 0..n-1), copy the vectors of documents
unchanged since ``live`` instead of encoding them again, checkpoint encoded chunks
(:mod:`dualsearch.write.checkpoints`) so a killed run resumes, then index the vectors (with the live
version's trained centroids unless told to retrain) and their BM25 postings, and publish: the
segment is renamed into place, the live segments that lost documents get new deletion files, and
a new manifest naming the segments is switched in atomically (:mod:`dualsearch.index.layout`).

A write keeps the live segments (``publish(..., deleted_rows=...)``): it costs the new documents
and the deletion files, not the corpus. A build, new towers and a retrain write every document into
one new segment. Any error, or leaving the ``with`` block without publishing, removes the build
directories and leaves the live version untouched. Call it while holding the writer lock
(:class:`dualsearch.write.lock.IndexLock`).

Memory stays bounded by the chunks being encoded (one locally; two per worker on Ray,
:mod:`dualsearch.write.executors`) plus the new segment's FAISS index.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import faiss
import numpy as np

from dualsearch.atomic import fsync_path
from dualsearch.corpora.document import Document
from dualsearch.corpora.records import check_counts
from dualsearch.errors import IndexBuildError, is_disk_full
from dualsearch.index import ann, layout, ondisk
from dualsearch.index.ann_build import index_vectors, pseudo_queries
from dualsearch.index.config import IndexConfig
from dualsearch.index.deletions import deletion_file_name, write_deletions
from dualsearch.index.failpoints import failpoint
from dualsearch.index.lexical import LEXICAL_DIR
from dualsearch.index.lexical_segments import SEGMENT_SETTINGS, LexicalSegment
from dualsearch.index.manifest import PASSAGES_FILE, Manifest, SegmentEntry, library_versions, now_iso
from dualsearch.index.passages import PassagePlan, plan_passages
from dualsearch.index.query_tower import save_query_tower
from dualsearch.index.segment_set import open_segments
from dualsearch.index.store import DocumentStoreReader, DocumentStoreWriter
from dualsearch.index.vectors import VectorsWriter, open_vectors
from dualsearch.ranking.settings import SearchSettings, index_search_settings
from dualsearch.towers.contract import Encoder
from dualsearch.towers.similarity import METRICS
from dualsearch.write.checkpoints import ChunkCache
from dualsearch.write.executors import Executor, LocalExecutor

logger = logging.getLogger(__name__)


@dataclass
class VersionStats:
    """What writing one version did."""

    counts: Counter = field(default_factory=Counter)  # added / updated / unchanged documents
    passages: int = 0  # vector rows written (one per passage)
    long_titles: int = 0  # documents whose title took more than half the tower's window
    cut_short: int = 0  # documents with text past their last passage (max_passages)
    encoded: int = 0  # documents run through the document tower (or taken from a checkpoint)
    from_checkpoint: int = 0  # of those, documents whose vectors a killed run had already encoded
    encode_seconds: float = 0.0
    index_seconds: float = 0.0
    retrained: bool = True

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class LiveVersion:
    """The version a write starts from: its segments (documents' hashes and vectors, read as one row
    space) and its trained centroids.

    ``verify`` hashes every file first (a write that copies vectors from the live segments must not
    copy damaged ones); without it, sizes are checked, which suffices for a write that only adds a
    segment and deletion files, since a new version carries the old files' recorded checksums and
    a damaged file is still refused by every reader.
    """

    def __init__(self, index_dir: Path, verify: bool = True) -> None:
        self.index_dir = Path(index_dir)
        self.version_dir = layout.current_version_dir(index_dir)
        self.manifest = Manifest.read(self.version_dir)
        index_search_settings(self.manifest, self.version_dir)  # never build on an index that cannot be searched
        self.entries = self.manifest.segment_entries()
        self.segments = open_segments(self.index_dir, self.version_dir, self.manifest, verify, load_indexes=False)
        self.store = self.segments  # look-ups and iteration over the live documents
        self.vectors = self.segments.vectors  # (rows, d) float32, gathered from the segments' maps

    def reusable_by(self, encoder: Encoder, passage_settings: dict) -> bool:
        """True if this version's passage vectors are what ``encoder`` would encode with these settings."""
        same_passages = self.manifest.passages == passage_settings
        # the vectors are the document tower's: a query tower retrained alone leaves them valid
        return same_passages and self.manifest.vectors_reusable_by(encoder.identity())

    def empty_trained_index(self) -> faiss.Index:
        """A live segment's index emptied of vectors, keeping the trained centroids and codebooks every
        segment shares."""
        directory = layout.segment_dir(self.index_dir, self.entries[0].name)
        # mapped, not read: only the centroids are kept, and the first segment may hold most of the vectors
        mapped = self.manifest.nlist > 0
        return ondisk.emptied(ondisk.read_index(directory / layout.INDEX_FILE, self.manifest.on_disk, mapped))

    def close(self) -> None:
        self.segments.close()


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
        self,
        index_dir: str | Path,
        encoder: Encoder,
        config: IndexConfig,
        live: LiveVersion | None = None,
        search_settings: SearchSettings | None = None,
        executor: Executor | None = None,
        background: bool = False,
        calibrated_nprobe: int | None = None,
    ) -> None:
        self.index_dir, self.encoder, self.config, self.live = Path(index_dir), encoder, config, live
        # a shard of a sharded index is searched with the nprobe calibrated on the whole corpus, not its own
        self.calibrated_nprobe = calibrated_nprobe
        # a merge in the background builds its segment without the writer lock, beside other writers: it
        # leaves their build directories and checkpoints alone (it encodes nothing, so needs none)
        self.background = background
        self.log_sequence: int | None = None  # the write-ahead log record the version holds (default: live's)
        self.executor = executor or LocalExecutor(encoder)  # where the document tower runs
        self.window, self.stride = config.passages.resolve(encoder)
        previous = SearchSettings.from_dict(live.manifest.search) if live is not None else SearchSettings()
        self.search_settings = search_settings or previous
        self.count_fields = (self.search_settings.prior_field,) if self.search_settings.prior_field else ()
        self.stats = VersionStats()
        self.passages_live = 0  # vector rows of live documents in the version being written
        self.passage_counts: list[int] = []  # passages of each document written to the new segment
        self.build_dir: Path | None = None  # the new segment's
        self.version_build_dir: Path | None = None  # the new version's (its manifest)
        self.passage_settings = config.passages.record(encoder)  # what the manifest records
        self.cache = ChunkCache(
            self.index_dir,
            encoder.identity().document_key(),
            f"w{self.window}s{self.stride}m{config.max_passages}" + ("l" if config.lead_passage else ""),
        )

    def __enter__(self) -> VersionWriter:
        if not self.background:  # under the writer lock: a build directory left here is a dead writer's
            layout.remove_stale_builds(self.index_dir)
        self.build_dir = layout.prepare_segment_build_dir(self.index_dir, background=self.background)
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        layout.discard(self.build_dir)  # already renamed into place if published
        if self.version_build_dir is not None:
            layout.discard(self.version_build_dir)
        if exc_type is None:
            if not self.background:
                self.cache.clear()
        elif is_disk_full(exc):
            # SQLite, FAISS, numpy and the system each say "full" their own way: one error for all.
            # Checkpoints would keep the disk full, so they go too (a rerun encodes again)
            if not self.background:
                self.cache.clear()
            raise layout.disk_full(self.index_dir, exc, self.build_dir) from exc

    def write(
        self, documents: Iterable[Document], show_progress: bool = False, total: int | None = None
    ) -> VersionStats:
        """Store ``documents`` and their vectors in the build directory (row ids 0..n-1)."""
        stats, started = self.stats, time.perf_counter()
        store = DocumentStoreWriter(self.build_dir / layout.STORE_FILE)
        try:
            with VectorsWriter(self.build_dir) as vectors_file, _progress(show_progress, total) as bar:
                prepared = (self._prepare(chunk) for chunk in _chunks(documents, self.config.chunk_size))
                written = 0  # documents stored so far (chunks ahead may be prepared already)
                for chunk, encoded in self.executor.encode(prepared, PreparedChunk.texts_to_encode):
                    vectors, spans = self._finish(chunk, encoded)  # (p, d), passages per document
                    first_rows = stats.passages + np.cumsum([0] + [len(s) for s in spans[:-1]])
                    rows = range(written, written + len(chunk.documents))
                    store.add(rows, chunk.documents, first_rows.tolist(), spans)
                    self.passage_counts.extend(len(passages) for passages in spans)
                    written = rows.stop
                    vectors_file.append(vectors)
                    stats.passages += len(vectors)
                    bar.update(len(chunk.documents))
                    bar.set_postfix(encoded=stats.encoded, refresh=False)
                    failpoint("encoding")
        finally:
            store.close()
        stats.encode_seconds = time.perf_counter() - started
        logger.info(
            "encoded %d documents in %.1fs (%d from checkpoints); %d passages for %d documents",
            stats.encoded,
            stats.encode_seconds,
            stats.from_checkpoint,
            stats.passages,
            stats.total,
        )
        if stats.cut_short:
            logger.warning(
                "%d documents go on past their last passage (max_passages %s): the rest of their text "
                "is not encoded (BM25 still reads it)",
                stats.cut_short,
                self.config.max_passages,
            )
        if stats.long_titles:
            logger.warning(
                "%d documents have titles longer than half the document tower's window (%d tokens): "
                "the tower cuts each of their passages short",
                stats.long_titles,
                self.window,
            )
        return stats

    def publish(self, corpus_name: str = "", retrain: bool = True, deleted_rows: np.ndarray | None = None) -> Path:
        """Index the written documents as a new segment and publish the next version; returns its directory.

        Without ``deleted_rows`` the new segment is the whole index, its centroids trained anew (or, with
        ``retrain=False``, the live version's kept). With ``deleted_rows`` (live document rows of
        ``live``, possibly none) the live segments are kept, less those rows, and the new segment, if
        any document was written, joins them on the live centroids.
        """
        stats, live = self.stats, self.live
        carrying = deleted_rows is not None
        if carrying and (live is None or retrain):
            raise ValueError("keeping the live segments needs a live version and its centroids")
        stats.retrained = not carrying and (retrain or live is None)
        version_name = layout.next_version_name(self.index_dir)
        entries = self._carried_entries(np.asarray(deleted_rows, np.int64), version_name) if carrying else []
        if stats.total:
            plan, nprobe, entry = self._write_segment(version_name, carrying)
            entries.append(entry)
        if carrying:  # a small segment says little about the lists to visit: keep the calibrated value
            plan, nprobe = ann.IndexPlan(live.manifest.factory, live.manifest.nlist), live.manifest.default_nprobe
        if not sum(entry.live_count for entry in entries):  # a build of nothing, or every document deleted
            raise IndexBuildError(f"corpus {corpus_name or '(given)'} has no documents")
        tower_files = self._save_query_tower()
        self.version_build_dir = layout.prepare_build_dir(self.index_dir)
        manifest = self._manifest(plan, nprobe, corpus_name, entries, tower_files)
        manifest.write(self.version_build_dir)
        return layout.publish(self.index_dir, self.version_build_dir)

    def _write_segment(self, version_name: str, carrying: bool) -> tuple[ann.IndexPlan, int, SegmentEntry]:
        """Index the written vectors and documents in the build directory and rename it into place."""
        plan, nprobe, files = self.index_segment(carrying)
        return plan, nprobe, self._place_segment(version_name, files)

    def _place_segment(self, version_name: str, files: dict) -> SegmentEntry:
        name = layout.publish_segment(self.index_dir, self.build_dir, version_name)
        self.passages_live += self.stats.passages
        return SegmentEntry(name, self.stats.total, self.stats.passages, files)

    def index_segment(self, carrying: bool = True) -> tuple[ann.IndexPlan, int, dict]:
        """Index the written vectors and documents in the build directory (the FAISS index on the live
        centroids when ``carrying``, the BM25 postings, the filter fields); returns the plan, the nprobe
        and the checksums of the segment's files."""
        stats, live, started = self.stats, self.live, time.perf_counter()
        if carrying:  # joins the live segments: on their centroids
            stats.retrained = False
        vectors = open_vectors(self.build_dir, self.encoder.dimension)  # (n, d) float32
        reuse = None if stats.retrained else live
        calibrate = not carrying and self.calibrated_nprobe is None
        probes = pseudo_queries(self.build_dir, self.encoder, stats.total, self.config) if calibrate else None
        index, plan, nprobe = index_vectors(
            vectors,
            self.config,
            reuse.empty_trained_index() if reuse else None,
            reuse.manifest.factory if reuse else None,
            probes,
            self.build_dir if self.config.on_disk else None,
            self.encoder.identity().similarity,
            calibrate=calibrate,
        )
        if self.calibrated_nprobe is not None:
            nprobe = self.calibrated_nprobe
        faiss.write_index(index, str(self.build_dir / layout.INDEX_FILE))
        del index  # an on-disk index maps its lists file: let go of it before the directory is renamed
        lexical_files = self._write_lexical_and_filters()
        np.save(self.build_dir / PASSAGES_FILE, np.asarray(self.passage_counts, np.int32))
        failpoint("writing")
        stats.index_seconds = time.perf_counter() - started
        logger.info(
            "indexed %d vectors with %s in %.1fs (%s)",
            stats.passages,
            plan.factory,
            stats.index_seconds,
            "trained" if reuse is None else "centroids kept",
        )
        names = (layout.INDEX_FILE, layout.STORE_FILE, layout.VECTORS_FILE, PASSAGES_FILE, *lexical_files)
        files = {name: layout.file_checksum(self.build_dir / name) for name in names}
        if self.config.on_disk:
            files[layout.IVFDATA_FILE] = layout.file_checksum(self.build_dir / layout.IVFDATA_FILE)
        return plan, nprobe, files

    def publish_merge(self, current: LiveVersion, merged: list[str], base_rows: np.ndarray, files: dict) -> Path | None:
        """Publish the next version after ``current`` with the segments named ``merged`` replaced by the
        one this writer built (:meth:`index_segment`) from their live documents in ``self.live``, the
        version the merge started from; call it holding the writer lock.

        ``base_rows`` are the starting version's document rows of the new segment's rows, in order. What
        was deleted from the merged segments since the merge started is deleted from the new one (a
        deletion file), so writes published meanwhile are kept. Returns None, publishing nothing, when
        ``current`` no longer holds every merged segment (an ``optimize`` or a rewrite took them).
        """
        base, stats = self.live, self.stats
        positions = {entry.name: number for number, entry in enumerate(current.entries)}
        if not all(name in positions for name in merged):
            return None
        # each new row's segment and row in the starting version, and whether it is deleted now
        base_numbers = np.searchsorted(base.segments.doc_offsets, base_rows, side="right") - 1
        gone = np.zeros(len(base_rows), bool)
        for number in np.unique(base_numbers):
            name = base.entries[number].name
            mine = base_numbers == number
            local = base_rows[mine] - base.segments.doc_offsets[number]
            gone[mine] = np.isin(local, current.segments.segments[positions[name]].deleted)
        version_name = layout.next_version_name(self.index_dir)
        entry = self._place_segment(version_name, files)
        counts = base.segments.passage_counts()[base_rows]
        self.passages_live = int(counts[~gone].sum())  # the new segment's live passages; the others' follow
        if gone.any():
            directory = layout.segment_dir(self.index_dir, entry.name)
            file_name, deleted = deletion_file_name(version_name), np.flatnonzero(gone).astype(np.int64)
            write_deletions(directory / file_name, deleted)
            fsync_path(directory / file_name)
            fsync_path(directory)
            entry = dataclasses.replace(
                entry,
                files=entry.files | {file_name: layout.file_checksum(directory / file_name)},
                deleted=file_name,
                deleted_count=len(deleted),
            )
        failpoint("merging")
        first = min(positions[name] for name in merged)
        entries = []
        for number, kept in enumerate(current.entries):
            segment = current.segments.segments[number]
            if number == first and not gone.all():  # (all deleted meanwhile: left out, removed after the publish)
                entries.append(entry)
            if kept.name in merged:
                continue
            self.passages_live += int(segment.passage_counts.sum() - segment.passage_counts[segment.deleted].sum())
            entries.append(kept)
        self.live, stats.retrained = current, False  # the manifest follows the version published meanwhile
        tower_files = self._save_query_tower()
        self.version_build_dir = layout.prepare_build_dir(self.index_dir)
        plan = ann.IndexPlan(current.manifest.factory, current.manifest.nlist)
        manifest = self._manifest(plan, current.manifest.default_nprobe, "", entries, tower_files)
        manifest.write(self.version_build_dir)
        return layout.publish(self.index_dir, self.version_build_dir)

    def _carried_entries(self, deleted_rows: np.ndarray, version_name: str) -> list[SegmentEntry]:
        """The live segments, each less its documents among ``deleted_rows`` (global rows): a segment
        that lost documents gets a new deletion file, one that lost them all is left out."""
        segments, kept = self.live.segments, []
        if len(deleted_rows) and not segments.live[deleted_rows].all():
            raise ValueError("only live documents can be deleted")
        for number, entry in enumerate(self.live.entries):
            segment = segments.segments[number]
            rows = segments.rows_of(number)
            gone = deleted_rows[(deleted_rows >= rows.start) & (deleted_rows < rows.stop)] - rows.start
            deleted = np.union1d(segment.deleted, gone).astype(np.int64)
            if len(deleted) == entry.documents:
                continue
            self.passages_live += int(segment.passage_counts.sum() - segment.passage_counts[deleted].sum())
            if not len(gone):
                kept.append(entry)
                continue
            directory = layout.segment_dir(self.index_dir, entry.name)
            file_name = deletion_file_name(version_name)
            write_deletions(directory / file_name, deleted)
            fsync_path(directory / file_name)
            fsync_path(directory)
            failpoint("deleting")
            files = {name: value for name, value in entry.files.items() if name != entry.deleted}
            files[file_name] = layout.file_checksum(directory / file_name)
            kept.append(dataclasses.replace(entry, files=files, deleted=file_name, deleted_count=len(deleted)))
        return kept

    def _save_query_tower(self) -> dict[str, dict]:
        """Save the query tower in the index (searching it then needs no torch) before the version is
        published, and return its files' checksums for the manifest ({} when it cannot be saved)."""
        recorded = self.live.manifest.query_tower_files if self.live is not None else {}
        tower_dir = save_query_tower(self.index_dir, self.encoder, recorded)
        return layout.tree_checksums(self.index_dir, tower_dir) if tower_dir is not None else {}

    def _write_lexical_and_filters(self) -> list[str]:
        """Write the BM25 postings of the segment's documents and index the filter fields; returns the
        postings' files (relative paths)."""
        started = time.perf_counter()
        store = DocumentStoreReader(self.build_dir / layout.STORE_FILE)
        try:
            lexical = LexicalSegment.build(d.encoding_text() for d in store.iter_documents())
        finally:
            store.close()
        files = [f"{LEXICAL_DIR}/{name}" for name in lexical.save(self.build_dir / LEXICAL_DIR)]
        logger.info("BM25 postings of %d documents in %.1fs", lexical.document_count, time.perf_counter() - started)
        if self.config.filter_fields:
            writer = DocumentStoreWriter(self.build_dir / layout.STORE_FILE)
            try:
                writer.index_fields(self.config.filter_fields)
            finally:
                writer.close()
        return files

    def _prepare(self, chunk: list[Document]) -> PreparedChunk:
        """What one chunk needs: vectors copied from the live version for documents unchanged there
        (when the towers and passage settings are the same), from a checkpoint when a killed run
        encoded the rest, and otherwise the passage texts to encode."""
        live, stats = self.live, self.stats
        known = live.store.lookup(d.id for d in chunk) if live is not None else {}
        reusable = live is not None and live.reusable_by(self.encoder, self.passage_settings)
        prepared = PreparedChunk(chunk, [None] * len(chunk), [None] * len(chunk))
        for position, document in enumerate(chunk):
            hit = known.get(document.id)
            kind = "added" if hit is None else "unchanged" if hit.content_hash == document.content_hash() else "updated"
            stats.counts[kind] += 1
            if kind != "unchanged":  # the readers check counts with file and line; this covers every caller
                check_counts(document, self.count_fields, "the documents given")
            if kind == "unchanged" and reusable:
                prepared.parts[position] = live.vectors[hit.first_row : hit.first_row + len(hit.passages)]
                prepared.spans[position] = hit.passages
            else:
                prepared.to_encode.append(position)
        if prepared.to_encode:
            documents = [chunk[p] for p in prepared.to_encode]
            prepared.plan = plan_passages(
                documents, self.encoder, self.window, self.stride, self.config.max_passages, self.config.lead_passage
            )
            stats.long_titles += prepared.plan.long_titles
            stats.cut_short += prepared.plan.cut_short
            prepared.key = ChunkCache.key(documents)
            prepared.checkpointed = self.cache.load(prepared.key, self.encoder.dimension)
            if prepared.checkpointed is not None and len(prepared.checkpointed) != len(prepared.plan.texts):
                prepared.checkpointed = None
        return prepared

    def _finish(self, chunk: PreparedChunk, encoded: np.ndarray) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
        """The chunk's passage vectors (p, d) and spans, with ``encoded`` (the vectors of its texts to
        encode) checkpointed and put in place."""
        if chunk.to_encode:
            if chunk.checkpointed is not None:
                encoded = chunk.checkpointed
                self.stats.from_checkpoint += len(chunk.to_encode)
            else:
                expected = (len(chunk.plan.texts), self.encoder.dimension)
                if encoded.shape != expected:  # a worker that went wrong must not shift every row after it
                    raise IndexBuildError(f"the document tower returned {encoded.shape} vectors for {expected}")
                self.cache.save(chunk.key, encoded)
            bounds = np.cumsum([0] + [len(s) for s in chunk.plan.spans])
            for i, position in enumerate(chunk.to_encode):
                chunk.parts[position] = encoded[bounds[i] : bounds[i + 1]]
                chunk.spans[position] = chunk.plan.spans[i]
            self.stats.encoded += len(chunk.to_encode)
        parts = chunk.parts
        vectors = np.concatenate(parts) if parts else np.zeros((0, self.encoder.dimension), np.float32)
        return vectors.astype(np.float32, copy=False), chunk.spans

    def _manifest(
        self, plan, nprobe: int, corpus_name: str, entries: list[SegmentEntry], tower_files: dict
    ) -> Manifest:
        identity, stats, config = self.encoder.identity(), self.stats, self.config
        reuse = None if stats.retrained else self.live
        previous = self.live.manifest if self.live is not None else None
        kept = reuse.manifest if reuse is not None else None
        return Manifest(
            model=identity.model,
            weights_sha256=identity.weights_sha256,
            query_weights_sha256=identity.tower_sha256("query"),
            document_weights_sha256=identity.tower_sha256("document"),
            query_backend=identity.query_backend,
            document_backend=identity.document_backend,
            routes=list(identity.routes),
            dimension=identity.dimension,
            similarity=identity.similarity,
            metric=METRICS[identity.similarity],
            factory=plan.factory,
            nlist=plan.nlist,
            default_nprobe=nprobe,
            document_count=sum(entry.live_count for entry in entries),
            passage_count=self.passages_live,
            passages=self.passage_settings,
            lexical=dict(SEGMENT_SETTINGS),
            search=dataclasses.asdict(self.search_settings),
            filter_fields=list(config.filter_fields),
            on_disk=config.on_disk,
            query_tower_files=tower_files,
            corpus=corpus_name or (previous.corpus if previous else ""),
            files={},
            segments=[entry.record() for entry in entries],
            log_sequence=self._log_sequence(previous),
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
                "calibration_queries": config.calibration_queries,
                "encode_seconds": round(stats.encode_seconds, 3),
                "index_seconds": round(stats.index_seconds, 3),
            },
        )

    def _log_sequence(self, previous: Manifest | None) -> int:
        """The write-ahead log record the new version holds: the one given, else the live version's."""
        if self.log_sequence is not None:
            return self.log_sequence
        return previous.log_sequence if previous is not None else 0


@dataclass
class PreparedChunk:
    """One chunk of documents on its way to the vectors file: what is known of each document's vectors
    before the document tower runs."""

    documents: list[Document]
    parts: list[np.ndarray | None]  # each document's passage vectors, once known
    spans: list[list[tuple[int, int]] | None]  # each document's passage spans, once known
    to_encode: list[int] = field(default_factory=list)  # positions of the documents the tower must encode
    plan: PassagePlan | None = None  # their passages
    key: str = ""  # their checkpoint key
    checkpointed: np.ndarray | None = None  # their vectors, when a killed run had encoded them

    def texts_to_encode(self) -> list[str]:
        """The passage texts the document tower must encode (none when checkpointed)."""
        return self.plan.texts if self.plan is not None and self.checkpointed is None else []


def _chunks(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(documents)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _progress(show: bool, total: int | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not show, unit="doc", desc="indexing", dynamic_ncols=True)
