"""BM25 over immutable segments with deletions: term frequencies are stored per segment, and the
statistics BM25 needs (live documents, their average length, each query term's document frequency)
are computed at query time from the live documents of every segment, as Lucene does. A document's
score therefore depends on the live corpus alone, never on the order of the writes that made it: one
segment or ten, with deletions or without, the same live documents score the same.

Why not a library with segments (docs/segments.md says more): tantivy and Lucene count a deleted
document in a term's document frequency until a merge drops it, so scores would move with write
history; SQLite FTS5 keeps its statistics right but in one mutable table, which an index made of
immutable, checksummed versions cannot share between versions without copying it whole. Tokenising
is bm25s's (:func:`dualsearch.index.lexical.tokenize`), and the formula is its ``lucene`` method, so
one segment without deletions scores exactly as the bm25s index of the same documents.

Files of one segment (in ``DIR``): ``terms.json`` (the segment's terms, in column order),
``postings-{indptr,rows,counts}.npy`` (term-major CSC: the documents holding each term and how many
times) and ``lengths.npy`` (tokens per document), all memory-mapped when read.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from dualsearch.errors import IndexCorruptError
from dualsearch.index.lexical import SETTINGS, make_stemmer, tokenize, tokenize_all

_ARRAYS = ("indptr", "rows", "counts")
# what a manifest records of the lexical side: bm25s's tokenising and formula, our postings
SEGMENT_SETTINGS = {**SETTINGS, "library": "dualsearch.index.lexical_segments"}


@dataclass(frozen=True)
class LexicalSegment:
    """The postings of one segment's documents (rows 0..n-1 of the segment)."""

    terms: Mapping[str, int]  # term -> column (read from its file at the first look-up, once loaded)
    indptr: np.ndarray  # (terms + 1,) int64: column j's postings are rows[indptr[j]:indptr[j + 1]]
    rows: np.ndarray  # (postings,) int32, ascending within a column
    counts: np.ndarray  # (postings,) int32: how often the term occurs in the document
    lengths: np.ndarray  # (documents,) int32: tokens per document after stop words and stemming

    @property
    def document_count(self) -> int:
        return len(self.lengths)

    @classmethod
    def build(cls, texts: Iterable[str]) -> LexicalSegment:
        """Tokenise and invert ``texts`` (row i = text i)."""
        terms, columns, rows, lengths = {}, [], [], []
        for row, tokens in enumerate(tokenize_all(texts)):
            lengths.append(len(tokens))
            for term, count in Counter(tokens).items():
                columns.append(terms.setdefault(term, len(terms)))
                rows.append((row, count))
        column_of = np.asarray(columns, np.int64)
        order = np.argsort(column_of, kind="stable")  # rows stay ascending within a column
        pairs = np.asarray(rows, np.int64).reshape(-1, 2)[order]
        indptr = np.zeros(len(terms) + 1, np.int64)
        np.cumsum(np.bincount(column_of, minlength=len(terms)), out=indptr[1:])
        return cls(
            terms, indptr, pairs[:, 0].astype(np.int32), pairs[:, 1].astype(np.int32), np.asarray(lengths, np.int32)
        )

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(rows, counts) of the documents holding ``term``; empty arrays when none does."""
        column = self.terms.get(term)
        if column is None:
            return np.empty(0, np.int32), np.empty(0, np.int32)
        start, stop = self.indptr[column], self.indptr[column + 1]
        return self.rows[start:stop], self.counts[start:stop]

    def save(self, directory: Path) -> list[str]:
        """Write the segment into ``directory``; returns the file names written."""
        directory.mkdir(parents=True, exist_ok=True)
        ordered = sorted(self.terms, key=self.terms.__getitem__)
        (directory / "terms.json").write_text(json.dumps(ordered, ensure_ascii=False), encoding="utf-8")
        for name in _ARRAYS:
            np.save(directory / f"postings-{name}.npy", getattr(self, name))
        np.save(directory / "lengths.npy", self.lengths)
        return ["terms.json", *(f"postings-{name}.npy" for name in _ARRAYS), "lengths.npy"]

    @classmethod
    def load(cls, directory: Path, lazy: bool = False) -> LexicalSegment:
        """The segment saved in ``directory``. ``lazy`` reads its terms at the first look-up (a writer
        opening the live segments to add one never looks up a term); otherwise now, so a searcher
        holding the segment keeps working after its files are removed."""
        try:
            arrays = {name: np.load(directory / f"postings-{name}.npy", mmap_mode="r") for name in _ARRAYS}
            lengths = np.load(directory / "lengths.npy", mmap_mode="r")
        except (OSError, ValueError) as error:
            raise IndexCorruptError(f"{directory}: a lexical segment cannot be read ({error})") from None
        if len(arrays["rows"]) != len(arrays["counts"]):
            raise IndexCorruptError(f"{directory}: the lexical segment's files disagree in length")
        terms = _TermsFile(directory / "terms.json", len(arrays["indptr"]) - 1)
        return cls(terms if lazy else dict(terms), lengths=lengths, **arrays)


class _TermsFile(Mapping):
    """A segment's terms (term -> column), read from ``terms.json`` at the first look-up (a large
    segment's term list is the slowest of its files to read)."""

    def __init__(self, path: Path, expected: int) -> None:
        self.path, self.expected = path, expected

    @cached_property
    def _columns(self) -> dict[str, int]:
        try:
            ordered = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise IndexCorruptError(f"{self.path}: a lexical segment's terms cannot be read ({error})") from None
        if not isinstance(ordered, list) or len(ordered) != self.expected:
            raise IndexCorruptError(f"{self.path}: the lexical segment's files disagree in length")
        return {term: column for column, term in enumerate(ordered)}

    def __getitem__(self, term: str) -> int:
        return self._columns[term]

    def __iter__(self):
        return iter(self._columns)

    def __len__(self) -> int:
        return self.expected


class SegmentedBM25:
    """BM25 scores over segments, each with an optional mask of its live rows (None: all live).

    Rows are numbered across segments in order (segment 0's rows first), as the version's store is.

    Example:
        >>> first = LexicalSegment.build(["green tea leaves", "espresso coffee"])
        >>> second = LexicalSegment.build(["black tea"])
        >>> [round(float(s), 2) for s in SegmentedBM25([first, second]).scores("tea")]  # as one bm25s index
        [0.19, 0.0, 0.23]
        >>> gone = SegmentedBM25([first, second], [np.array([True, False]), None])  # espresso deleted
        >>> [round(float(s), 2) for s in gone.scores("tea")]  # as an index of the two tea documents alone
        [0.08, 0.0, 0.09]
    """

    def __init__(self, segments: Sequence[LexicalSegment], live: Sequence[np.ndarray | None] | None = None) -> None:
        self.segments = list(segments)
        self.live = list(live) if live is not None else [None] * len(self.segments)
        self.offsets = np.cumsum([0] + [segment.document_count for segment in self.segments])
        live_lengths = [
            segment.lengths if mask is None else segment.lengths[mask]
            for segment, mask in zip(self.segments, self.live, strict=True)
        ]
        self.document_count = int(sum(len(lengths) for lengths in live_lengths))  # live documents
        self.total_length = float(sum(lengths.sum(dtype=np.float64) for lengths in live_lengths))
        self.average_length = self.total_length / self.document_count if self.document_count else 1.0
        self._stemmer = make_stemmer()

    @property
    def row_count(self) -> int:
        return int(self.offsets[-1])  # live and deleted rows alike

    def statistics(self, query: str) -> CorpusStatistics:
        """What BM25 needs of this index for ``query``: live documents, their total length, and the
        document frequency of each query term. Added over shards, they are the whole corpus's
        (:meth:`CorpusStatistics.combined`), so every shard scores as one index would."""
        terms = Counter(tokenize([query], self._stemmer)[0])
        frequencies = {term: sum(len(rows) for rows, _, _ in self._postings(term)) for term in terms}
        return CorpusStatistics(self.document_count, self.total_length, frequencies)

    def scores(
        self, query: str, mask: np.ndarray | None = None, statistics: CorpusStatistics | None = None
    ) -> np.ndarray:
        """BM25 score of every row, (rows,) float32; deleted rows score 0, and so do rows ``mask`` leaves out.
        ``statistics`` (a sharded index's, added over its shards) replace this index's own."""
        scores = np.zeros(self.row_count, np.float64)
        for term, repeats in Counter(tokenize([query], self._stemmer)[0]).items():
            scores += repeats * self._term_scores(term, statistics)
        scores = scores.astype(np.float32)
        return scores if mask is None else scores * mask

    def term_scores(
        self, query: str, doc_rows: list[int], statistics: CorpusStatistics | None = None
    ) -> list[tuple[str, np.ndarray]]:
        """Each distinct query term some live document holds, with its share of the BM25 score of
        each of ``doc_rows`` (a repeated term counts each time, so the shares add up to :meth:`scores`
        with the same ``statistics``)."""
        tokens = tokenize([query], self._stemmer)[0]
        shares = []
        for term, repeats in Counter(tokens).items():
            per_row = self._term_scores(term, statistics)
            if per_row.any():
                shares.append((term, (repeats * per_row[doc_rows]).astype(np.float32)))
        return shares

    def _postings(self, term: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(global rows, counts, lengths) of the live documents holding ``term``, per segment that has any."""
        found = []
        for offset, segment, mask in zip(self.offsets, self.segments, self.live, strict=False):
            rows, counts = segment.postings(term)
            if mask is not None and len(rows):
                keep = mask[rows]
                rows, counts = rows[keep], counts[keep]
            if len(rows):
                found.append((offset + rows, counts, segment.lengths[rows]))
        return found

    def _term_scores(self, term: str, statistics: CorpusStatistics | None = None) -> np.ndarray:
        """One term's BM25 score of every row (float64), with its live document frequency (or the
        frequency and corpus size ``statistics`` give)."""
        found = self._postings(term)
        scores = np.zeros(self.row_count, np.float64)
        if not found:
            return scores
        if statistics is None:
            n, frequency, average_length = self.document_count, sum(len(r) for r, _, _ in found), self.average_length
        else:
            n, frequency, average_length = statistics.documents, statistics.frequencies[term], statistics.average_length
        k1, b = SETTINGS["k1"], SETTINGS["b"]
        idf = np.log(1.0 + (n - frequency + 0.5) / (frequency + 0.5))  # Lucene's (and bm25s's "lucene")
        for rows, counts, lengths in found:
            counts = counts.astype(np.float64)
            scores[rows] = idf * counts / (counts + k1 * (1 - b + b * lengths / average_length))
        return scores


@dataclass(frozen=True)
class CorpusStatistics:
    """What BM25 reads of a whole corpus for one query: live documents, their total length (tokens),
    and each query term's document frequency. A shard's are its own; :meth:`combined` adds them up,
    as Elasticsearch's DFS phase gathers term statistics before its query phase.

    Example:
        >>> a = CorpusStatistics(2, 5.0, {"tea": 1})
        >>> b = CorpusStatistics(1, 2.0, {"tea": 1})
        >>> CorpusStatistics.combined([a, b])
        CorpusStatistics(documents=3, total_length=7.0, frequencies={'tea': 2})
    """

    documents: int
    total_length: float
    frequencies: dict[str, int]

    @property
    def average_length(self) -> float:
        return self.total_length / self.documents if self.documents else 1.0

    @classmethod
    def combined(cls, parts: Sequence[CorpusStatistics]) -> CorpusStatistics:
        frequencies: Counter = Counter()
        for part in parts:
            frequencies.update(part.frequencies)
        return cls(sum(p.documents for p in parts), sum(p.total_length for p in parts), dict(frequencies))
