"""The open segments of an index version, seen as one index: :class:`SegmentSet`.

A version is a list of immutable segments, each with its own document store, passage vectors, ANN
index and BM25 postings, and per segment the rows deleted since it was written (docs/segments.md).
The search code reads one row space: a segment's document rows follow the previous segment's
(``doc_offsets``), and so do its passage rows (``passage_offsets``). A deleted document keeps its
rows, and every read skips it: look-ups, filters and field values leave it out, BM25 counts only live
documents in its statistics (:class:`~dualsearch.index.lexical_segments.SegmentedBM25`), and the
dense search passes FAISS a selector of live rows, so deleted passages are excluded inside the
search and ``k`` results still come back.

Segments of an IVF index share one trained coarse quantizer: searching each segment with the same
``nprobe`` visits the same lists a single index of all their vectors would, so the merged top-k is
that index's top-k.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import faiss
import numpy as np

from dualsearch.corpora.document import Document
from dualsearch.errors import IndexCorruptError, SearchFailedError
from dualsearch.index import ann, layout, ondisk
from dualsearch.index.deletions import read_deletions
from dualsearch.index.lexical import LEXICAL_DIR
from dualsearch.index.lexical_segments import LexicalSegment, SegmentedBM25
from dualsearch.index.manifest import PASSAGES_FILE, Manifest, SegmentEntry
from dualsearch.index.store import DocumentStoreReader, Located, StoredDocument, json_path
from dualsearch.index.vectors import open_vectors


@dataclass
class OpenSegment:
    """One segment's parts, opened (rows are the segment's own, from 0)."""

    name: str
    store: DocumentStoreReader
    vectors: np.ndarray  # (passages, d) float32, memory-mapped
    index: faiss.Index | None  # passage vectors under their passage rows (None: not loaded)
    lexical: LexicalSegment
    passage_counts: np.ndarray  # (documents,) passages of each document
    deleted: np.ndarray  # (deleted,) int64 document rows deleted, sorted
    directory: Path | None = None  # where its files are (None: not opened from an index directory)
    files: dict = field(default_factory=dict)  # their sizes and checksums, as the manifest lists them

    @property
    def document_count(self) -> int:
        return len(self.passage_counts)


class SegmentSet:
    """Segments in version order, read as one index of document rows and passage rows.

    Its store methods (``fetch``, ``lookup``, ``select_rows``, ...) answer as a
    :class:`~dualsearch.index.store.DocumentStoreReader` of the live documents would, in the global
    row space; :attr:`vectors` gathers passage vectors across segments; :meth:`search` is the dense
    search and :attr:`lexical` the BM25 side.
    """

    def __init__(self, segments: Sequence[OpenSegment]) -> None:
        self.segments = list(segments)
        counts = [segment.passage_counts for segment in self.segments]
        self.doc_offsets = np.cumsum([0] + [len(c) for c in counts])  # (segments + 1,)
        self.passage_offsets = np.cumsum([0] + [int(c.sum()) for c in counts])
        self.live = np.ones(self.row_count, bool)  # (rows,) over document rows
        self.live_passages = []  # per segment: (passages,) bool, or None when nothing is deleted there
        for number, segment in enumerate(self.segments):
            self.live[self.doc_offsets[number] + segment.deleted] = False
            if len(segment.deleted):
                alive = np.ones(len(segment.passage_counts), bool)
                alive[segment.deleted] = False
                self.live_passages.append(np.repeat(alive, segment.passage_counts))
            else:
                self.live_passages.append(None)
        self.live_passage_count = sum(
            int(alive.sum()) if alive is not None else int(segment.passage_counts.sum())
            for segment, alive in zip(self.segments, self.live_passages, strict=True)
        )
        self.lexical = SegmentedBM25(
            [segment.lexical for segment in self.segments],
            [self.live[start:stop] if len(s.deleted) else None for s, start, stop in self._spans()],
        )
        self.vectors = SegmentVectors([segment.vectors for segment in self.segments], self.passage_offsets)
        self._live_passage_rows: np.ndarray | None = None
        self._same_centroids: bool | None = None  # every segment on the first one's centroids (IVF)
        # per segment, built once: what a search passes FAISS when no filter is given
        self._live_selectors = [_live_selector(alive) for alive in self.live_passages]

    def rows_of(self, number: int) -> slice:
        """The document rows of segment ``number`` (its position in the version)."""
        return slice(int(self.doc_offsets[number]), int(self.doc_offsets[number + 1]))

    def _spans(self) -> Iterator[tuple[OpenSegment, int, int]]:
        for number, segment in enumerate(self.segments):
            rows = self.rows_of(number)
            yield segment, rows.start, rows.stop

    @property
    def row_count(self) -> int:
        """Document rows, the deleted included: the length of every per-document array."""
        return int(self.doc_offsets[-1])

    @property
    def document_count(self) -> int:
        """Live documents."""
        return int(self.live.sum())

    # --- the store, over live documents -------------------------------------------------------------

    def _segment_of(self, doc_rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.doc_offsets, doc_rows, side="right") - 1

    def fetch(self, doc_rows: Iterable[int]) -> dict[int, StoredDocument]:
        """Documents of the given (global) rows; rows out of range are absent from the result."""
        rows = np.fromiter((int(row) for row in doc_rows), np.int64)
        rows = rows[(rows >= 0) & (rows < self.row_count)]
        found: dict[int, StoredDocument] = {}
        owners = self._segment_of(rows)
        for number in np.unique(owners):
            segment, doc_offset = self.segments[number], int(self.doc_offsets[number])
            local = rows[owners == number] - doc_offset
            for row, stored in segment.store.fetch(local.tolist()).items():
                found[row + doc_offset] = replace(
                    stored, doc_row=row + doc_offset, first_row=stored.first_row + int(self.passage_offsets[number])
                )
        return found

    def passage_counts(self) -> np.ndarray:
        """Passages of each document row, (rows,) int64 (a deleted document keeps its count)."""
        return np.concatenate(
            [np.asarray(s.passage_counts, np.int64) for s in self.segments] or [np.zeros(0, np.int64)]
        )

    def select_rows(self, condition: str, parameters: list) -> np.ndarray:
        """Live document rows whose record satisfies the SQL ``condition``, sorted: (m,) int64."""
        parts = [segment.store.select_rows(condition, parameters) + start for segment, start, _ in self._spans()]
        rows = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return rows[self.live[rows]]

    def field_values(self, field: str) -> list:
        """The metadata ``field`` of every document row (None where absent, and for deleted rows)."""
        values = [value for segment in self.segments for value in segment.store.field_values(field)]
        return [value if alive else None for value, alive in zip(values, self.live, strict=True)]

    def has_field(self, field: str) -> bool:
        """True if some live document's metadata has ``field``."""
        condition = "json_type(metadata, ?) IS NOT NULL"
        return len(self.select_rows(condition, [json_path(field)])) > 0

    def lookup(self, doc_ids: Iterable[str]) -> dict[str, Located]:
        """Where each live document among ``doc_ids`` is (global rows), and its content hash."""
        doc_ids = list(doc_ids)
        found: dict[str, Located] = {}
        for number, (segment, start, _) in enumerate(self._spans()):
            passage_offset = int(self.passage_offsets[number])
            for doc_id, located in segment.store.lookup(doc_ids).items():
                if self.live[start + located.doc_row]:
                    found[doc_id] = replace(
                        located, doc_row=start + located.doc_row, first_row=located.first_row + passage_offset
                    )
        return found

    def iter_documents(self, skip: np.ndarray | None = None) -> Iterator[Document]:
        """Every live document, in row order, but those whose row ``skip`` (a (rows,) bool mask) marks."""
        wanted = self.live if skip is None else self.live & ~skip
        for segment, start, stop in self._spans():
            if not wanted[start:stop].any():
                continue  # a segment no one reads from is not paged through
            alive = wanted[start:stop]
            for row, document in enumerate(segment.store.iter_documents()):
                if alive[row]:
                    yield document

    # --- the dense search ---------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, nprobe: int | None, allowed_rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` live passages of (m, d) ``queries`` over every segment: scores and global passage
        rows, (m, k') each, best first, -1 rows where fewer were found. ``allowed_rows`` (sorted global
        passage rows, live ones only) restricts the search further (a metadata filter)."""
        found_scores, found_rows = [], []
        # segments share the trained centroids: the lists each query visits are found once, not per segment
        lists = ann.coarse_lists(self.segments[0].index, queries, nprobe) if self._shared_quantizer() else None
        for number, segment in enumerate(self.segments):
            start, stop = int(self.passage_offsets[number]), int(self.passage_offsets[number + 1])
            selector, keep = self._selector(number, allowed_rows, start, stop)
            if selector is False or segment.index.ntotal == 0:
                continue
            scores, rows = ann.search_vectors(segment.index, queries, k, nprobe, selector, lists)
            del keep  # the selector's arrays lived through the search
            found_scores.append(scores)
            found_rows.append(np.where(rows >= 0, rows + start, -1))
        if not found_scores:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        scores, rows = np.concatenate(found_scores, axis=1), np.concatenate(found_rows, axis=1)
        scores = np.where(rows >= 0, scores, -np.inf)
        # best first; ties by row, so a set of segments orders as one index of their rows would
        order = np.lexsort((rows, -scores), axis=1)[:, : min(k, self.live_passage_count)]
        scores, rows = np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)
        return np.where(rows >= 0, scores, 0).astype(np.float32), rows

    def _shared_quantizer(self) -> bool:
        """Whether every segment is an IVF index on the first one's centroids (checked once)."""
        if self._same_centroids is None:
            first = self.segments[0].index if self.segments else None
            self._same_centroids = len(self.segments) > 1 and all(
                ann.same_quantizer(first, segment.index) for segment in self.segments[1:]
            )
        return self._same_centroids

    def _selector(self, number: int, allowed_rows: np.ndarray | None, start: int, stop: int):
        """FAISS's selector for one segment (None: every row; False: no row can match) and the arrays
        it points into, which must outlive the search."""
        if allowed_rows is not None:
            local = allowed_rows[(allowed_rows >= start) & (allowed_rows < stop)] - start
            if not len(local):
                return False, None
            return faiss.IDSelectorBatch(local.astype(np.int64)), local
        return self._live_selectors[number]  # built with the set: a search pays nothing for deletions

    def live_passage_rows(self) -> np.ndarray:
        """Global passage rows of the live documents, sorted: (live passages,) int64."""
        if self._live_passage_rows is None:
            parts = [
                start + (np.arange(int(segment.passage_counts.sum())) if alive is None else np.flatnonzero(alive))
                for segment, alive, start in zip(self.segments, self.live_passages, self.passage_offsets, strict=False)
            ]
            self._live_passage_rows = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        return self._live_passage_rows

    def check_mapped_files(self) -> None:
        """Refuse to search when a memory-mapped file changed size since it was published
        (:func:`~dualsearch.index.layout.check_mapped_files`)."""
        for segment in self.segments:
            if segment.directory is not None:
                layout.check_mapped_files(segment.directory, segment.files)

    def close(self) -> None:
        for segment in self.segments:
            segment.store.close()
        self.segments = []


def _live_selector(alive: np.ndarray | None) -> tuple:
    """(FAISS's selector of a segment's live passage rows, the bitmap it reads): (None, None) when
    nothing is deleted, (False, None) when nothing is live."""
    if alive is None:
        return None, None
    if not alive.any():
        return False, None
    bitmap = np.packbits(alive, bitorder="little")
    return faiss.IDSelectorBitmap(len(alive), faiss.swig_ptr(bitmap)), bitmap  # the pair keeps the bitmap alive


class SegmentVectors:
    """The passage vectors of every segment as one read-only array of global passage rows.

    ``vectors[rows]`` gathers rows from the segments' memory maps; ``np.asarray(vectors)`` copies
    them all into one array (the exact search over everything needs that).
    """

    def __init__(self, parts: Sequence[np.ndarray], offsets: np.ndarray) -> None:
        self.parts, self.offsets = list(parts), np.asarray(offsets)
        self.dimension = parts[0].shape[1] if parts else 0

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), self.dimension

    def __getitem__(self, rows) -> np.ndarray:
        if isinstance(rows, (int, np.integer)):  # one row, counted from the end when negative
            return self[np.array([rows % len(self) if rows < 0 else rows])][0]
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(len(self)))
        rows = np.asarray(rows, np.int64)
        if rows.ndim != 1:
            raise SearchFailedError("passage vectors are gathered by a 1-d array of rows")
        gathered = np.empty((len(rows), self.dimension), np.float32)
        owners = np.searchsorted(self.offsets, rows, side="right") - 1
        for number in np.unique(owners):
            chosen = owners == number
            gathered[chosen] = self.parts[number][rows[chosen] - self.offsets[number]]
        return gathered

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        joined = np.concatenate([np.asarray(part) for part in self.parts]) if self.parts else np.zeros((0, 0))
        return joined if dtype is None else joined.astype(dtype)


def open_segments(
    index_dir: Path,
    version_dir: Path,
    manifest: Manifest,
    verify: bool = True,
    load_indexes: bool = True,
    previous: SegmentSet | None = None,
) -> SegmentSet:
    """Open every segment of the version ``manifest`` describes: its files checked against the
    manifest's checksums (sizes always, content with ``verify``), then against the manifest's counts.
    Without ``load_indexes`` the FAISS indexes stay on disk (a writer that adds a segment reads
    documents and vectors, never every list), and :meth:`SegmentSet.search` is not available.
    A segment ``previous`` (an earlier version's set, still open) holds with the same files is shared,
    not opened again: only new segments and new deletion files are read, so following a write costs
    what the write changed.

    Raises:
        IndexCorruptError: a missing, truncated or altered file, or one that disagrees with the manifest.
    """
    entries = manifest.segment_entries()
    layout.verify_segments(index_dir, entries, full=verify)
    opened: list[OpenSegment] = []
    try:
        for entry in entries:
            directory = layout.segment_dir(index_dir, entry.name)
            held = _held_segment(previous, directory, entry, load_indexes)
            if held is not None:
                opened.append(_shared(held, entry, directory))
            else:
                opened.append(_open_segment(directory, entry, version_dir, manifest, load_indexes))
    except BaseException:
        for segment in opened:
            segment.store.close()
        raise
    return SegmentSet(opened)


def _held_segment(
    previous: SegmentSet | None, directory: Path, entry: SegmentEntry, load_indexes: bool
) -> OpenSegment | None:
    """The segment ``previous`` holds for ``entry``: the same directory and files (its deletions aside)."""
    if previous is None:
        return None
    for segment in previous.segments:
        same_files = _without_deletions(segment.files) == _without_deletions(entry.files)
        if segment.directory == directory and same_files and (segment.index is not None or not load_indexes):
            return segment
    return None


def _without_deletions(files: dict) -> dict:
    return {name: value for name, value in files.items() if not name.startswith("deleted-")}


def _shared(held: OpenSegment, entry: SegmentEntry, directory: Path) -> OpenSegment:
    deleted = held.deleted
    if entry.files.get(entry.deleted) != held.files.get(entry.deleted) or not entry.deleted:
        deleted = read_deletions(directory / entry.deleted, entry.documents) if entry.deleted else np.zeros(0, np.int64)
    if len(deleted) != entry.deleted_count:
        raise IndexCorruptError(f"{directory}: {len(deleted)} deleted rows; the manifest says {entry.deleted_count}")
    return replace(held, store=held.store.share(), deleted=deleted, files=entry.files)


def _open_segment(
    directory: Path, entry: SegmentEntry, version_dir: Path, manifest: Manifest, load_index: bool
) -> OpenSegment:
    store = DocumentStoreReader(directory / layout.STORE_FILE)
    try:
        counts = _passage_counts(directory, entry, store)
        index = ondisk.read_index(directory / layout.INDEX_FILE, manifest.on_disk) if load_index else None
        manifest.check_opened(version_dir, entry, counts, index)
        deleted = np.zeros(0, np.int64)
        if entry.deleted:
            deleted = read_deletions(directory / entry.deleted, entry.documents)
            if len(deleted) != entry.deleted_count:
                raise IndexCorruptError(
                    f"{directory / entry.deleted} holds {len(deleted)} deleted rows; "
                    f"the manifest says {entry.deleted_count}"
                )
        vectors = open_vectors(directory, manifest.dimension)  # mapped now: outlives the file's removal
        lexical = LexicalSegment.load(directory / LEXICAL_DIR, lazy=not load_index)  # a writer's: read if used
    except BaseException:
        store.close()
        raise
    return OpenSegment(entry.name, store, vectors, index, lexical, counts, deleted, directory, entry.files)


def _passage_counts(directory: Path, entry: SegmentEntry, store: DocumentStoreReader) -> np.ndarray:
    """The segment's passages per document: its memory-mapped file, or, in a segment written before
    there was one, its store's records (a scan of every row)."""
    if PASSAGES_FILE not in entry.files:
        return store.passage_counts()
    try:
        return np.load(directory / PASSAGES_FILE, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise IndexCorruptError(f"{directory / PASSAGES_FILE} cannot be read ({error})") from None
