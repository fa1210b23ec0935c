"""One shard's side of a sharded search: :class:`ShardSearcher`.

A sharded search runs in three rounds, as Elasticsearch's DFS query-then-fetch does:

1. **statistics** (:meth:`ShardSearcher.statistics`): what a score needs of the whole corpus (BM25's
   document count, total length and each query term's document frequency; the passages a filter
   lets through; the largest count of the prior field). The searcher adds them up over the shards.
2. **candidates** (:meth:`ShardSearcher.candidates`): each shard's best passages by the towers and
   best documents by BM25, scored with the whole corpus's statistics, each with both scores (the
   fusion needs both) and what a prior and boosts add. The corpus's top passages are among its
   shards' top passages, and its top documents by BM25 among theirs, so the merge finds the
   candidates one index would rank.
3. **fetch** (:meth:`ShardSearcher.stored_hits`): the stored documents of the merged top ``k``.
   A remote shard sends the documents of its own best candidates with round 2 (``prefetch``), so
   this round asks only for the documents that were not among them, and usually never runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dualsearch.errors import SearchFailedError
from dualsearch.index.lexical_segments import CorpusStatistics
from dualsearch.ranking.boosts import boost_scores
from dualsearch.ranking.dense import exact_max_passage
from dualsearch.ranking.filters import Filter
from dualsearch.ranking.priors import largest_count
from dualsearch.ranking.settings import SearchSettings
from dualsearch.read.searcher import Searcher, SearchResult, _top_positive


@dataclass(frozen=True)
class ShardStatistics:
    """What one shard (or, combined, the whole corpus) contributes to every shard's scores."""

    lexical: list[CorpusStatistics] | None  # per query (None: a dense search reads no BM25)
    live_passages: int
    allowed_passages: int | None  # passages the filter lets through (None: no filter)
    prior_largest: float | None  # the prior field's largest count (None: no prior, or no document has it)
    fields: frozenset[str]  # the fields the search names (filter, prior, boosts) some document here has
    versions: tuple[str, ...] = ()  # the version each shard answered from: the next rounds ask for it

    @classmethod
    def combined(cls, parts: Sequence[ShardStatistics]) -> ShardStatistics:
        lexical = None
        if parts[0].lexical is not None:
            lexical = [CorpusStatistics.combined(per_query) for per_query in zip(*(p.lexical for p in parts))]
        allowed = [p.allowed_passages for p in parts]
        largest = [p.prior_largest for p in parts if p.prior_largest is not None]
        return cls(
            lexical,
            sum(p.live_passages for p in parts),
            None if allowed[0] is None else sum(allowed),
            max(largest) if largest else None,
            frozenset().union(*(p.fields for p in parts)),
            tuple(version for p in parts for version in p.versions),
        )


@dataclass(frozen=True)
class StoredHit:
    """What a search result shows of a stored document, fetched from its shard: the merge adds the
    rank, the score and the passage that matched (:meth:`search_result`)."""

    doc_id: str
    title: str
    text: str
    metadata: dict
    passages: list  # the character spans of its passages in ``text``
    first_row: int  # the shard's passage row of its first passage
    prior: float | None  # as SearchResult.prior
    boost: float | None  # as SearchResult.boost

    def search_result(self, candidate: Candidate, score: float, rank: int) -> SearchResult:
        passage = None
        if candidate.best_row is not None:
            passage = tuple(self.passages[candidate.best_row - self.first_row])
        return SearchResult(rank, self.doc_id, score, self.title, self.text, self.metadata, passage,
                            candidate.dense, candidate.lexical, self.prior, self.boost)  # fmt: skip


@dataclass(frozen=True)
class Candidates:
    """One shard's answer to the candidates round for one query."""

    by_towers: list[Candidate]  # a candidate per passage found, best first
    by_terms: list[Candidate]  # its best documents by BM25, best first
    documents: dict[int, StoredHit]  # the stored documents of its likeliest winners, by row (``prefetch``)


@dataclass(frozen=True)
class Candidate:
    """A document one shard puts forward for one query (by the towers, once per passage found), with
    every score the merge needs."""

    shard: int
    row: int  # the document's row in its shard
    dense: float | None  # the towers' MaxP score (None: not computed, a lexical search)
    lexical: float | None  # BM25 with the corpus's statistics (None: a dense search)
    best_row: int | None  # the shard's passage row that matched best (None: no dense score)
    added: float  # the weighted prior plus the boosts (0 without either)


class ShardSearcher(Searcher):
    """A :class:`Searcher` of one shard, with the rounds a sharded search runs on it."""

    shard_number = 0

    def statistics(self, queries: Sequence[str], settings: SearchSettings, filter: Filter | None) -> ShardStatistics:
        """This shard's part of the corpus statistics for ``queries`` searched with ``settings``."""
        self._check_open()
        lexical = None if settings.mode == "dense" else [self._lexical.statistics(query) for query in queries]
        allowed = self._allowed_documents(filter, missing_ok=True)
        allowed_passages = None if allowed is None else int(self._passages.counts[allowed].sum())
        largest = None
        if settings.uses_prior and self._store.has_field(settings.prior_field):
            largest = largest_count(self._store.field_values(settings.prior_field))
        fields = frozenset(name for name in named_fields(settings, filter) if self._store.has_field(name))
        return ShardStatistics(
            lexical, self._segments.live_passage_count, allowed_passages, largest, fields, (self.version_name,)
        )

    def candidates(
        self,
        vectors: np.ndarray | None,
        queries: Sequence[str],
        depth: int,
        passage_depth: int,
        nprobe: int | None,
        exact: bool,
        settings: SearchSettings,
        filter: Filter | None,
        corpus: ShardStatistics,
        version: str | None = None,
        prefetch: int = 0,
    ) -> list[Candidates]:
        """Per query: this shard's top ``passage_depth`` passages by the towers (a candidate each, best
        first: one index finds its documents among the corpus's top passages, so the merge does too)
        and its top ``depth`` documents by BM25, all scored with the whole corpus's ``corpus``
        statistics (``vectors``: the queries encoded once by the searcher). ``version``: the one the
        statistics came from (rows are a version's). With ``prefetch``, the stored documents of the
        first ``prefetch`` documents on each side come too: a remote shard saves the fetch round
        for the results among them."""
        self._check_version(version)
        allowed = self._allowed_documents(filter, missing_ok=True)
        if allowed is not None and not len(allowed):
            return [Candidates([], [], {}) for _ in queries]
        mask = None
        if allowed is not None:
            mask = np.zeros(self._segments.row_count, np.float32)
            mask[allowed] = 1.0
        added = self._corpus_added(settings, corpus.prior_largest) if settings.reranks else None
        passages = None
        if settings.mode != "lexical" and passage_depth > 0:
            self._segments.check_mapped_files()
            allowed_rows = self._passages.rows_of(allowed) if allowed is not None else None
            passages = self._search_passages(
                vectors, passage_depth, nprobe, exact, allowed_rows, (corpus.live_passages, corpus.allowed_passages)
            )
        answers = []
        for number, query in enumerate(queries):
            lexical = None
            if settings.mode != "dense":
                lexical = self._lexical.scores(query, mask, corpus.lexical[number])
            by_towers, by_terms = self._query_candidates(vectors, number, passages, lexical, depth, added)
            documents = {}
            if prefetch:
                likeliest = {c.row: None for c in by_towers}  # documents in passage order, each once
                rows = [*list(likeliest)[:prefetch], *(c.row for c in by_terms[:prefetch])]
                documents = self._stored_hits(rows, settings, corpus.prior_largest)
            answers.append(Candidates(by_towers, by_terms, documents))
        return answers

    def _query_candidates(self, vectors, number, passages, lexical, depth, added):
        def candidate(doc: int, dense_score, best_row) -> Candidate:
            return Candidate(
                self.shard_number,
                doc,
                dense_score,
                None if lexical is None else float(lexical[doc]),
                best_row,
                0.0 if added is None else float(added[doc]),
            )

        by_towers, by_terms = [], []
        if passages is not None:
            scores, rows = passages[0][number], passages[1][number]
            found = rows >= 0
            doc_rows = self._passages.row_to_doc[rows[found]]
            by_towers = [candidate(int(d), float(s), int(r)) for d, s, r in zip(doc_rows, scores[found], rows[found])]
        if lexical is not None:
            top = [doc for doc, _ in _top_positive(lexical, depth)]
            by_terms = [candidate(doc, None, None) for doc in top]
            if vectors is not None and top:
                # exact MaxP for every BM25 candidate: one index scores a document exactly unless it is
                # among its top documents by the towers, whose score from the passages found then
                # stands (rank_candidates keeps that one)
                scores, rows = exact_max_passage(
                    self._vectors, self._passages, top, vectors[number], self.manifest.similarity
                )
                by_terms = [candidate(doc, score, row) for doc, score, row in zip(top, scores, rows)]
        return by_towers, by_terms

    def _corpus_added(self, settings: SearchSettings, largest: float | None) -> np.ndarray:
        """The weighted prior (scaled by the corpus's largest count) plus the boosts, per document row."""
        boosts = self._boost_scores(settings.boosts) if settings.boosts else None
        return self._added_scores(settings, self._corpus_priors(settings, largest), boosts, largest)

    def _corpus_priors(self, settings: SearchSettings, largest: float | None) -> np.ndarray | None:
        """Each document's prior scaled by the corpus's ``largest`` count (0 where this shard has no
        document with the field), or None when the search uses no prior."""
        if not settings.uses_prior:
            return None
        if largest is None or not self._store.has_field(settings.prior_field):
            return np.zeros(self._segments.row_count, np.float32)
        return self.prior_scores(settings.prior_field, largest)

    def _boost_scores(self, boosts: tuple) -> np.ndarray:
        """As a searcher's, but a boost on a field no document of this shard has matches nothing here."""
        return self._cached(
            ("boosts", boosts),
            lambda: boost_scores(boosts, lambda spec: self._allowed_documents(spec, True), self._segments.row_count),
        )

    def stored_hits(
        self, rows: Sequence[int], settings: SearchSettings, largest: float | None, version: str | None = None
    ) -> dict[int, StoredHit]:
        """The stored documents at document ``rows`` of this shard, by row, with their prior (scaled by
        the corpus's ``largest`` count) and boosts under ``settings``."""
        self._check_version(version)
        return self._stored_hits(rows, settings, largest)

    def _stored_hits(
        self, rows: Sequence[int], settings: SearchSettings, largest: float | None
    ) -> dict[int, StoredHit]:
        if not rows:
            return {}
        boosts = self._boost_scores(settings.boosts) if settings.boosts else None
        priors = self._corpus_priors(settings, largest)
        hits = {}
        for row, stored in self._store.fetch(rows).items():
            prior = None if priors is None else float(priors[row])
            boost = None if boosts is None else float(boosts[row])
            hits[row] = StoredHit(
                stored.doc_id,
                stored.title,
                stored.text,
                stored.metadata,
                stored.passages,
                stored.first_row,
                prior,
                boost,
            )
        return hits

    def lexical_statistics(self, query: str) -> CorpusStatistics:
        """This shard's part of BM25's statistics for ``query`` (what an explanation's shares need)."""
        self._check_open()
        return self._lexical.statistics(query)

    def term_shares(self, query: str, doc_ids: Sequence[str], corpus: CorpusStatistics) -> list[tuple[str, np.ndarray]]:
        """Each query term's share of the BM25 score of each of ``doc_ids`` (ids this shard does not hold
        get 0), with the whole corpus's statistics: one index's explanation, from one shard's part."""
        self._check_open()
        located = self._store.lookup(doc_ids)
        positions = [number for number, doc_id in enumerate(doc_ids) if doc_id in located]
        if not positions:
            return []
        rows = [located[doc_ids[number]].doc_row for number in positions]
        shares = []
        for term, values in self._lexical.term_scores(query, rows, corpus):
            spread = np.zeros(len(doc_ids), np.float32)
            spread[positions] = values
            shares.append((term, spread))
        return shares

    def _check_version(self, version: str | None) -> None:
        self._check_open()
        if version is not None and version != self.version_name:
            raise StaleVersionError(f"{self.index_dir}: {version} asked for, {self.version_name} open")


def named_fields(settings: SearchSettings, filter: Filter | None) -> set[str]:
    """The fields a search names (its filter's, its boosts', its prior's): the statistics round says
    which of them some document of the shard has."""
    named = {*(filter or {}), *(field for field, _, _ in settings.boosts)}
    if settings.uses_prior:
        named.add(settings.prior_field)
    return named


class StaleVersionError(SearchFailedError):
    """A round of a sharded search asked a shard for a version it no longer holds open (it moved on
    between rounds): the search is run again."""
