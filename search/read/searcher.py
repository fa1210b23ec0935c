"""Answer queries from an index directory: :class:`Searcher`.

Three modes (:class:`~dualsearch.ranking.settings.SearchSettings`): ``dense`` ranks documents by
their best passage under the towers (:mod:`dualsearch.ranking.dense`), ``lexical`` by BM25
(:mod:`dualsearch.index.lexical`), and ``hybrid`` fuses the two rankings (:mod:`dualsearch.ranking.fusion`)
over the union of both sides' top candidates, with both scores computed for every candidate.
Metadata filters (:mod:`dualsearch.ranking.filters`) restrict both sides inside the search. A document
prior (:mod:`dualsearch.ranking.priors`), when the index or query names one, then adds to every score.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dualsearch.corpora.text_checks import check_query
from dualsearch.defaults import EXACT_FILTER_ROWS, K
from dualsearch.errors import InvalidInputError, SearchFailedError
from dualsearch.index import layout
from dualsearch.index.lexical_segments import SegmentedBM25
from dualsearch.index.manifest import Manifest
from dualsearch.index.query_tower import index_encoder
from dualsearch.index.segment_set import SegmentSet, SegmentVectors, open_segments
from dualsearch.index.shards import is_sharded
from dualsearch.index.store import StoredDocument
from dualsearch.index.tower_match import check_towers
from dualsearch.ranking.boosts import boost_scores
from dualsearch.ranking.dense import PASSAGE_OVERSAMPLING, PassageMap, best_per_document, exact_max_passage
from dualsearch.ranking.filters import Filter, filter_condition
from dualsearch.ranking.fusion import fuse
from dualsearch.ranking.priors import prior_scores, rerank_with_prior
from dualsearch.ranking.settings import SearchSettings, index_search_settings
from dualsearch.towers.contract import Encoder
from dualsearch.towers.similarity import exact_knn

logger = logging.getLogger(__name__)
Ranked = tuple[int, float, float | None, float | None, int | None]  # doc row, score, dense, lexical, best row
ADDED_CACHE = 8  # per-document sums a searcher keeps: per (prior, weight, boosts), and per boosts alone


@dataclass(frozen=True)
class SearchResult:
    rank: int  # 1-based
    doc_id: str
    score: float  # what ranked it: the fused score (hybrid), the towers' cosine (dense) or BM25 (lexical)
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    passage: tuple[int, int] | None = None  # character span in ``text`` of the passage that matched best
    dense_score: float | None = None  # cosine of the query and the best passage (None: not computed)
    lexical_score: float | None = None  # BM25 score of the document (None: not computed)
    prior: float | None = None  # the document's prior in [0, 1], when one joined the score (dualsearch.ranking.priors)
    boost: float | None = (
        None  # the sum of the boosts it matched, when boosts joined the score (dualsearch.ranking.boosts)
    )


class Searcher:
    """Search one version of an index directory.

    The version live when :meth:`open` ran stays in use, even if a re-index publishes a newer one
    (its files are held open, so they stay readable after a newer publish removes them), until
    :meth:`reload`. A searcher is a context manager; :meth:`close` releases what it holds.

    Example:
        >>> import tempfile
        >>> from dualsearch.write.build import index_corpus
        >>> from dualsearch.testing import FakeEncoder
        >>> index_dir = Path(tempfile.mkdtemp()) / "index"
        >>> _ = index_corpus("tiny", index_dir, FakeEncoder())
        >>> with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        ...     print(searcher.search("green tea", k=1)[0].doc_id)
        tea-green
    """

    # ShardedSearcher.open, set by the package dualsearch.read (its module builds on this one, which
    # therefore cannot import it)
    open_sharded: ClassVar[Callable[..., Any]]

    def __init__(
        self, index_dir: Path, version_dir: Path, manifest: Manifest, encoder: Encoder, segments: SegmentSet
    ) -> None:
        self.index_dir, self.version_dir, self.manifest, self.encoder = index_dir, version_dir, manifest, encoder
        self._segments = segments  # the version's segments, read as one row space (dualsearch.index.segment_set)
        self._store = segments
        self._vectors = segments.vectors  # (passages, d) float32, gathered from memory maps
        self._lexical = segments.lexical
        self._passages = PassageMap(segments.passage_counts())
        self.settings = index_search_settings(manifest, version_dir)
        self._priors: dict[tuple, np.ndarray] = {}  # (prior field, largest) -> (n,) priors, read on first use
        self._added: dict[tuple, np.ndarray] = {}  # (prior, weight, boosts) or ("boosts", boosts) -> (n,) sums
        self._closed = False

    @classmethod
    def open(
        cls,
        index_dir: str | Path,
        encoder: Encoder | None = None,
        verify: bool = True,
        previous: Searcher | None = None,
    ) -> Searcher:
        """Open the live version of ``index_dir``.

        Args:
            index_dir: A directory written by :func:`dualsearch.write.build.build_index`.
            encoder: Towers to encode queries; by default the ones named in the manifest are loaded.
            verify: Check every file against its sha256 in the manifest (sizes are always checked).
            previous: An open searcher of the same index, whose segments the new one shares where the
                versions have them in common (a server following writes reads only what changed).

        A sharded index (:mod:`dualsearch.index.shards`) opens as a
        :class:`~dualsearch.read.sharded.ShardedSearcher`, which searches every shard and merges.

        Raises:
            IndexNotFoundError: no index there. IndexCorruptError: a damaged file.
            IndexMismatchError: ``encoder`` is not the towers that built the index.
        """
        index_dir = Path(index_dir)
        if is_sharded(index_dir) and cls is Searcher:
            return Searcher.open_sharded(index_dir, encoder=encoder, verify=verify)
        version_dir = layout.current_version_dir(index_dir)
        manifest = Manifest.read(version_dir)
        if encoder is None:  # the index's own ONNX query tower (no torch), else the PyTorch towers
            encoder = index_encoder(index_dir, manifest, fallback_backend="torch")
        check_towers(manifest, encoder, index_dir)
        held = previous._segments if previous is not None and not previous._closed else None
        segments = open_segments(index_dir, version_dir, manifest, verify, previous=held)
        logger.info(
            "opened %s: %d documents in %d segments, %s",
            version_dir,
            manifest.document_count,
            len(segments.segments),
            manifest.factory,
        )
        return cls(index_dir, version_dir, manifest, encoder, segments)

    def reload(self) -> Searcher:
        """A searcher on the index's live version now, sharing these towers; this one is closed."""
        fresh = type(self).open(self.index_dir, encoder=self.encoder, previous=self)  # a shard stays a shard
        self.close()
        return fresh

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __len__(self) -> int:
        return self.manifest.document_count

    @property
    def passage_count(self) -> int:
        """Passages of the live documents (vectors the dense side searches)."""
        return self.manifest.passage_count

    @property
    def version_name(self) -> str:
        """The version searched (``v000003``); a sharded index's names each shard's."""
        return self.version_dir.name

    # The open version's parts, read-only, for analyses that recombine them offline (the benchmarks do).
    @property
    def store(self) -> SegmentSet:
        """The document store (its segments read as one): rows, ids, texts, metadata, passage spans."""
        self._check_open()
        return self._store

    @property
    def vectors(self) -> SegmentVectors:
        """Every passage vector, ``(passages, d)`` float32: ``vectors[rows]`` gathers rows, ``np.asarray``
        copies them all (deleted documents' rows included: :attr:`store` says which are live)."""
        self._check_open()
        return self._vectors

    @property
    def lexical(self) -> SegmentedBM25:
        """The BM25 index of the documents."""
        self._check_open()
        return self._lexical

    @property
    def passages(self) -> PassageMap:
        """Which vector rows belong to which document."""
        self._check_open()
        return self._passages

    def search(
        self,
        query: str,
        k: int = K,
        nprobe: int | None = None,
        exact: bool = False,
        mode: str | None = None,
        filter: Filter | None = None,
        **overrides: Any,
    ) -> list[SearchResult]:
        """The ``k`` documents that best answer ``query`` (fewer if fewer match).

        Args:
            query: Non-empty text.
            k: How many results, at least 1.
            nprobe: Inverted lists to visit (IVF only); default: the index's calibrated value.
            exact: Brute-force the dense side over all stored vectors instead of the ANN index.
            mode: ``hybrid``, ``dense`` or ``lexical``; default: the index's (``manifest.search``).
            filter: Metadata conditions every result meets (:mod:`dualsearch.ranking.filters`).
            **overrides: Other :class:`~dualsearch.ranking.settings.SearchSettings` for this query
                (``fusion``, ``rrf_k``, ``dense_weight``, ``candidates``, ``prior_field``,
                ``prior_weight``; ``prior_weight=0`` turns the index's prior off).
        """
        return self.search_batch([query], k, nprobe, exact, mode=mode, filter=filter, **overrides)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = K,
        nprobe: int | None = None,
        exact: bool = False,
        show_progress: bool = False,
        mode: str | None = None,
        filter: Filter | None = None,
        **overrides: Any,
    ) -> list[list[SearchResult]]:
        """:meth:`search` for many queries at once (the towers encode them in batches)."""
        _check_arguments(queries, k, nprobe)
        self._check_open()
        settings = self.settings.with_overrides(mode=mode, **overrides)
        allowed = self._allowed_documents(filter)  # (a,) document rows, or None for all
        mask = None
        if allowed is not None:
            mask = np.zeros(self._segments.row_count, np.float32)  # (n,)
            mask[allowed] = 1.0
        # a prior or a boost reorders the candidates, so it needs more of them than k, as the fusion does
        depth = settings.candidate_depth(k)
        priors = self.prior_scores(settings.prior_field) if settings.uses_prior else None
        boosts = self._boost_scores(settings.boosts) if settings.boosts else None
        added = self._added_scores(settings, priors, boosts) if settings.reranks else None
        vectors = dense = lexical = None
        if settings.mode != "lexical":
            vectors = self.encoder.encode_queries(queries, show_progress=show_progress)  # (m, d) float32
            dense = self._dense(vectors, depth, nprobe, exact, allowed)
        if settings.mode != "dense":
            lexical = [self._lexical.scores(query, mask) for query in queries]  # (n,) float32 each
        answers = []
        for number in range(len(queries)):
            if settings.mode == "dense":
                docs, scores, rows = dense[number]
                ranked = [(doc, score, score, None, row) for doc, score, row in zip(docs, scores, rows)]
            elif settings.mode == "lexical":
                ranked = [(doc, score, None, score, None) for doc, score in _top_positive(lexical[number], depth)]
            else:
                ranked = self._fuse(vectors[number], dense[number], lexical[number], depth, settings)
            if added is not None:
                ranked = _reranked(ranked, added)
            answers.append(self._results(ranked[:k], priors, boosts))
        return answers

    def _dense(self, vectors: np.ndarray, k: int, nprobe: int | None, exact: bool, allowed: np.ndarray | None):
        """Per query: (document rows, MaxP scores, best passage rows), up to ``k`` documents each."""
        self._segments.check_mapped_files()  # a truncated mapping would crash the process
        allowed_rows = self._passages.rows_of(allowed) if allowed is not None else None
        limit = self._segments.live_passage_count if allowed_rows is None else len(allowed_rows)
        answers: list = [([], [], [])] * len(vectors)  # what a query gets when no passage can match
        pending, depth = list(range(len(vectors))), min(limit, k * PASSAGE_OVERSAMPLING)
        while pending and depth > 0:
            scores, rows = self._search_passages(vectors[pending], depth, nprobe, exact, allowed_rows)
            widen = []
            for position, number in enumerate(pending):
                answers[number] = best_per_document(scores[position], rows[position], self._passages.row_to_doc)
                if len(answers[number][0]) < k and depth < limit:
                    widen.append(number)  # too few distinct documents among the passages fetched
            pending, depth = widen, min(limit, depth * PASSAGE_OVERSAMPLING)
        return [(docs[:k], scores[:k], rows[:k]) for docs, scores, rows in answers]

    def _search_passages(
        self,
        vectors: np.ndarray,
        depth: int,
        nprobe: int | None,
        exact: bool,
        allowed_rows: np.ndarray | None,
        corpus_passages: tuple[int, int | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``depth`` passages per query vector: scores and rows, (m, depth') each (-1: none).
        ``corpus_passages`` (live passages, passages the filter allows) of a whole sharded corpus decide
        how a filtered search runs, so that each shard runs it as one index would."""
        live, allowed_count = corpus_passages or (self._segments.live_passage_count, None)
        if allowed_rows is not None and allowed_count is None:
            allowed_count = len(allowed_rows)
        if allowed_rows is not None and (exact or allowed_count <= EXACT_FILTER_ROWS):
            subset = np.asarray(self._vectors[allowed_rows])  # (a, d): a filter that matches few passages
            scores, positions = exact_knn(vectors, subset, min(depth, len(subset)), self.manifest.similarity)
            return scores, np.where(positions >= 0, allowed_rows[np.maximum(positions, 0)], -1)
        if exact:
            return self._exact_search(vectors, depth)
        nprobe = nprobe or self.manifest.default_nprobe or None
        if allowed_rows is not None:
            # a selective filter leaves few hits in each list: visit proportionally more lists
            share = live / max(allowed_count, 1)
            nprobe = int(min(self.manifest.nlist or 1, (nprobe or 1) * np.ceil(share)))
        return self._segments.search(vectors, depth, nprobe, allowed_rows)

    def _fuse(
        self, query_vector: np.ndarray, dense, lexical_scores: np.ndarray, k: int, settings: SearchSettings
    ) -> list[Ranked]:
        """One query's hybrid ranking: both sides' candidates, both scores for each, fused."""
        known = {doc: (score, row) for doc, score, row in zip(*dense)}
        lexical_top = [doc for doc, _ in _top_positive(lexical_scores, max(k, settings.candidates))]
        missing = [doc for doc in lexical_top if doc not in known]
        for doc, score, row in zip(
            missing, *exact_max_passage(self._vectors, self._passages, missing, query_vector, self.manifest.similarity)
        ):
            known[doc] = (score, row)
        if not known:
            return []
        candidates = np.fromiter(known, dtype=np.int64)  # (c,)
        dense_values = np.array([known[int(doc)][0] for doc in candidates], np.float32)
        lexical_values = lexical_scores[candidates]
        fused = fuse(dense_values, lexical_values, settings.fusion, settings.rrf_k, settings.dense_weight)
        order = np.argsort(-fused, kind="stable")[:k]
        return [
            (
                int(candidates[i]),
                float(fused[i]),
                float(dense_values[i]),
                float(lexical_values[i]),
                known[int(candidates[i])][1],
            )
            for i in order
        ]

    def _added_scores(
        self,
        settings: SearchSettings,
        priors: np.ndarray | None,
        boosts: np.ndarray | None,
        largest: float | None = None,
    ) -> np.ndarray:
        """What joins each document's fused score: the weighted prior plus its boosts, (n,) float32,
        computed once per prior (and the largest count it was scaled by) and boosts."""
        key = (settings.prior_field if priors is not None else "", largest, settings.prior_weight, settings.boosts)

        def summed() -> np.ndarray:
            added = np.zeros(self._segments.row_count, np.float32)
            if priors is not None:
                added += settings.prior_weight * priors
            if boosts is not None:
                added += boosts
            return added

        return self._cached(key, summed)

    def _boost_scores(self, boosts: tuple) -> np.ndarray:
        """Each document's sum of the ``boosts`` it matches, (n,) float32, computed once per boosts."""
        return self._cached(
            ("boosts", boosts), lambda: boost_scores(boosts, self._allowed_documents, self._segments.row_count)
        )

    def _cached(self, key: tuple, compute) -> np.ndarray:
        """``compute()``, kept under ``key`` with the other per-document sums (at most :data:`ADDED_CACHE`)."""
        if key not in self._added:
            if len(self._added) >= ADDED_CACHE:  # queries that each set another weight must not grow it forever
                self._added.clear()
            self._added[key] = np.asarray(compute(), np.float32)
        return self._added[key]

    def prior_scores(self, field_name: str, largest: float | None = None) -> np.ndarray:
        """Every document's prior from the metadata ``field_name`` (:mod:`dualsearch.ranking.priors`), read
        once; scaled by ``largest`` (a sharded corpus's largest count) if given, else by this index's."""
        if (field_name, largest) not in self._priors:
            if not self._store.has_field(field_name):
                raise InvalidInputError(f"no document in {self.index_dir} has the prior field {field_name!r}")
            values = self._store.field_values(field_name)
            self._priors[field_name, largest] = prior_scores(values, field_name, largest)
        return self._priors[field_name, largest]

    def _allowed_documents(self, spec: Filter | None, missing_ok: bool = False) -> np.ndarray | None:
        """Document rows a filter lets through (sorted), or None without a filter. A field no document
        has is an error, unless ``missing_ok`` (a shard: another shard may have it): then no row matches."""
        if spec is None:
            return None
        condition, parameters = filter_condition(spec)
        for field_name in spec:
            if not self._store.has_field(field_name):
                if missing_ok:
                    return np.zeros(0, np.int64)
                raise InvalidInputError(f"no document in {self.index_dir} has the metadata field {field_name!r}")
        return self._store.select_rows(condition, parameters)

    def explain(self, query: str, results: Sequence[SearchResult]) -> list[dict]:
        """Why each of ``results`` (found for ``query``) matched: the document's and the query's tokens
        with the largest shares of the towers' cosine, exact for mean-pooled towers, and each query
        term's share of the BM25 score (:mod:`dualsearch.ranking.explain`)."""
        from dualsearch.ranking.explain import explain_results

        self._check_open()
        return explain_results(self.encoder, query, results, self._lexical_shares)

    def _lexical_shares(self, query: str, doc_ids: list[str]) -> list[tuple[str, np.ndarray]]:
        located = self._store.lookup(doc_ids)
        return self._lexical.term_scores(query, [located[doc_id].doc_row for doc_id in doc_ids])

    def document(self, doc_id: str) -> StoredDocument | None:
        """The stored document with id ``doc_id`` (title, text, metadata, passage spans), or None."""
        self._check_open()
        located = self._store.lookup([doc_id]).get(doc_id)
        return None if located is None else self._store.fetch([located.doc_row])[located.doc_row]

    def search_vectors(
        self, vectors: np.ndarray, k: int, nprobe: int | None = None, exact: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw search of (m, d) query vectors over passages: scores and passage rows, (m, k') each,
        -1 where nothing was found."""
        self._check_open()
        if exact:
            return self._exact_search(vectors, k)
        return self._segments.search(vectors, k, nprobe or self.manifest.default_nprobe or None)

    def _exact_search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        live_rows = self._segments.live_passage_rows()  # deleted passages are never candidates
        k = min(k, len(live_rows))
        scores, positions = exact_knn(vectors, self._vectors[live_rows], k, self.manifest.similarity)
        return scores, np.where(positions >= 0, live_rows[np.maximum(positions, 0)], -1)

    def _results(
        self, ranked: list[Ranked], priors: np.ndarray | None, boosts: np.ndarray | None
    ) -> list[SearchResult]:
        documents = self._store.fetch(doc for doc, *_ in ranked)
        results = []
        for doc, score, dense_score, lexical_score, best_row in ranked:
            stored = documents[doc]
            passage = tuple(stored.passages[best_row - stored.first_row]) if best_row is not None else None
            results.append(
                SearchResult(
                    len(results) + 1,
                    stored.doc_id,
                    score,
                    stored.title,
                    stored.text,
                    stored.metadata,
                    passage,
                    dense_score,
                    lexical_score,
                    None if priors is None else float(priors[doc]),
                    None if boosts is None else float(boosts[doc]),
                )
            )
        return results

    def close(self) -> None:
        """Release the store, the FAISS index and the vectors mapping (closing twice is harmless)."""
        if not self._closed:
            self._closed = True
            self._segments.close()
            self._vectors, self._lexical = None, None

    def _check_open(self) -> None:
        if self._closed:
            raise SearchFailedError(f"this searcher of {self.index_dir} is closed (after close() or reload())")


def _reranked(ranked: list[Ranked], added: np.ndarray) -> list[Ranked]:
    """``ranked`` reordered once each score has gained its document's ``added`` (weighted prior, boosts)."""
    if not ranked:
        return ranked
    scores = np.array([score for _, score, *_ in ranked], np.float64)
    order, combined = rerank_with_prior(scores, added[[doc for doc, *_ in ranked]], 1.0)
    return [(ranked[i][0], float(score), *ranked[i][2:]) for i, score in zip(order, combined)]


def _top_positive(scores: np.ndarray, count: int) -> list[tuple[int, float]]:
    """(row, score) of the ``count`` highest positive scores, best first."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > count:
        positive = positive[np.argpartition(-scores[positive], count - 1)[:count]]
    positive = positive[np.argsort(-scores[positive], kind="stable")]
    return [(int(row), float(scores[row])) for row in positive]


def _check_arguments(queries: Sequence[str], k: int, nprobe: int | None) -> None:
    if isinstance(queries, str):
        raise InvalidInputError("search_batch takes a list of queries, not one string")
    if not queries:
        raise InvalidInputError("no queries given")
    for query in queries:
        check_query(query)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k must be a whole number of at least 1, got {k!r}")
    if nprobe is not None and (isinstance(nprobe, bool) or not isinstance(nprobe, (int, np.integer)) or nprobe < 1):
        raise InvalidInputError(f"nprobe must be a whole number of at least 1, got {nprobe!r}")
