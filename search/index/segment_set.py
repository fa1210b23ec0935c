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
from dataclasses import dataclass, replace

import faiss
import numpy as np

from dualsearch.corpora.document import Document
from dualsearch.errors import SearchFailedError
from dualsearch.index import ann
from dualsearch.index.lexical_segments import LexicalSegment, SegmentedBM25
from dualsearch.index.store import DocumentStoreReader, Located, StoredDocument, json_path


@dataclass
class OpenSegment:
    """One segment's parts, opened (rows are the segment's own, from 0)."""

    name: str
    store: DocumentStoreReader
    vectors: np.ndarray  # (passages, d) float32, memory-mapped
    index: faiss.Index  # passage vectors under their passage rows
    lexical: LexicalSegment
    passage_counts: np.ndarray  # (documents,) passages of each document
    deleted: np.ndarray  # (deleted,) int64 document rows deleted, sorted

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

    def _spans(self) -> Iterator[tuple[OpenSegment, int, int]]:
        for number, segment in enumerate(self.segments):
            yield segment, int(self.doc_offsets[number]), int(self.doc_offsets[number + 1])

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

    def iter_documents(self) -> Iterator[Document]:
        """Every live document, in row order."""
        for segment, start, _ in self._spans():
            alive = self.live[start : start + segment.document_count]
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
        for number, segment in enumerate(self.segments):
            start, stop = int(self.passage_offsets[number]), int(self.passage_offsets[number + 1])
            selector, keep = self._selector(number, allowed_rows, start, stop)
            if selector is False or segment.index.ntotal == 0:
                continue
            scores, rows = ann.search_vectors(segment.index, queries, k, nprobe, selector)
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

    def _selector(self, number: int, allowed_rows: np.ndarray | None, start: int, stop: int):
        """FAISS's selector for one segment (None: every row; False: no row can match) and the arrays
        it points into, which must outlive the search."""
        if allowed_rows is not None:
            local = allowed_rows[(allowed_rows >= start) & (allowed_rows < stop)] - start
            if not len(local):
                return False, None
            return faiss.IDSelectorBatch(local.astype(np.int64)), local
        alive = self.live_passages[number]
        if alive is None:
            return None, None
        if not alive.any():
            return False, None
        bitmap = np.packbits(alive, bitorder="little")
        return faiss.IDSelectorBitmap(len(alive), faiss.swig_ptr(bitmap)), bitmap

    def close(self) -> None:
        for segment in self.segments:
            segment.store.close()
        self.segments = []


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
