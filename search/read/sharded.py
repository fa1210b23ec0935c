"""Search a sharded index as one: :class:`ShardedSearcher`.

The queries are encoded once; every shard gives its part of the corpus statistics, then its
candidates scored with the whole corpus's statistics, then the stored documents of the merged top
``k`` (the three rounds of :mod:`dualsearch.read.shard`; remote shards send most of those documents
with their candidates, ``prefetch``). The merge (:func:`rank_candidates`) ranks
as one index of the same documents does: the same candidates on each side, the same fusion over
them, the same prior and boosts. Only the order of documents with equal scores may differ (one index
orders them by row, and rows differ between one index and its shards).

This is the reference a distributed search is checked against: the shards run in this process, one
after another.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from dualsearch.defaults import K
from dualsearch.errors import InvalidInputError, ShardUnavailableError
from dualsearch.index.lexical_segments import CorpusStatistics
from dualsearch.index.shards import ShardMap, shard_name, shard_of
from dualsearch.ranking.dense import PASSAGE_OVERSAMPLING
from dualsearch.ranking.filters import Filter
from dualsearch.ranking.fusion import fuse
from dualsearch.ranking.priors import rerank_with_prior
from dualsearch.ranking.settings import SearchSettings
from dualsearch.read.searcher import SearchResult, _check_arguments
from dualsearch.read.shard import (
    Candidate,
    Candidates,
    ShardSearcher,
    ShardStatistics,
    StaleVersionError,
    StoredHit,
)
from dualsearch.towers.contract import Encoder

logger = logging.getLogger(__name__)
RETRIES = 2  # searches run again when a shard moved to a new version between rounds


class ShardedSearcher:
    """Search every shard of a sharded index and merge, exactly.

    Example:
        >>> import tempfile
        >>> from dualsearch.corpora.sources import read_corpus
        >>> from dualsearch.write.shard_build import build_sharded_index
        >>> from dualsearch.testing import FakeEncoder
        >>> index_dir = Path(tempfile.mkdtemp()) / "sharded"
        >>> build_sharded_index(read_corpus("tiny"), index_dir, FakeEncoder(), shards=2).shards
        [12, 14]
        >>> with ShardedSearcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        ...     print(len(searcher), searcher.search("green tea", k=1)[0].doc_id)
        26 tea-green
    """

    def __init__(self, index_dir: Path, shard_map: ShardMap, shards: list[ShardSearcher]) -> None:
        self.index_dir, self.shard_map, self.shards = index_dir, shard_map, shards
        self.encoder: Encoder = shards[0].encoder
        self.settings: SearchSettings = shards[0].settings
        self._opened_versions = tuple(shard.version_name for shard in shards)
        # stored documents each shard sends with its candidates, per side: 0 in one process, where the
        # fetch round costs nothing; an ingress sets k, which saves that round for most searches
        self.prefetch = 0
        self._seen = threading.local()  # each thread's last search: a server's threads share this searcher

    @classmethod
    def open(cls, index_dir: str | Path, encoder: Encoder | None = None, verify: bool = True) -> ShardedSearcher:
        """Open the live version of every shard of ``index_dir`` (one set of towers for all)."""
        index_dir = Path(index_dir)
        shard_map = ShardMap.read(index_dir)
        shards: list[ShardSearcher] = []
        try:
            for number, directory in enumerate(shard_map.shard_dirs(index_dir)):
                shard = ShardSearcher.open(directory, encoder=encoder, verify=verify)
                shard.shard_number, encoder = number, shard.encoder
                shards.append(shard)
        except BaseException:
            for shard in shards:
                shard.close()
            raise
        logger.info("opened %s: %d shards, %d documents", index_dir, len(shards), sum(map(len, shards)))
        return cls(index_dir, shard_map, shards)

    def __enter__(self) -> ShardedSearcher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __len__(self) -> int:
        return sum(len(shard) for shard in self.shards)

    @property
    def manifest(self):
        """The first shard's manifest: the towers, the factory and the lists, which every shard shares (its
        counts are the shard's own; ``len(searcher)`` counts them all). Searches use ``default_nprobe``,
        one index's calibrated value, which every shard records."""
        return self.shards[0].manifest

    @property
    def passage_count(self) -> int:
        """Passages of the live documents of every shard."""
        return sum(shard.manifest.passage_count for shard in self.shards)

    @property
    def versions(self) -> tuple[str, ...]:
        """Each shard's version that this thread's last search read (before any: the ones opened)."""
        return getattr(self._seen, "versions", self._opened_versions)

    @property
    def version_name(self) -> str:
        """Each shard's version this thread's last search read, joined: ``v000004+v000002``."""
        return "+".join(self.versions)

    def explain(self, query: str, results: Sequence[SearchResult]) -> list[dict]:
        """As :meth:`dualsearch.read.searcher.Searcher.explain`; BM25's shares with the whole corpus's statistics."""
        from dualsearch.ranking.explain import explain_results

        return explain_results(self.encoder, query, results, self._lexical_shares)

    def _lexical_shares(self, query: str, doc_ids: list[str]) -> list[tuple[str, np.ndarray]]:
        corpus = CorpusStatistics.combined(self._each(lambda _, shard: shard.lexical_statistics(query)))
        shares: dict[str, np.ndarray] = {}
        for part in self._each(lambda _, shard: shard.term_shares(query, doc_ids, corpus)):
            for term, values in part:
                shares[term] = shares.get(term, 0) + values  # each id's share comes from its own shard
        return list(shares.items())

    @property
    def missing_shards(self) -> list[str]:
        """The shards this thread's last search went on without (a partial search), by name: ``shard-001``."""
        return [shard_name(number) for number in sorted(getattr(self._seen, "absent", None) or ())]

    def _each(self, call: Callable[[int, Any], Any]) -> list:
        """``call(number, shard)`` for every shard, all started before any is waited for (a remote shard
        answers with something that has ``result()``), their answers in shard order. In a partial
        search, a shard that cannot answer answers as a shard with no documents from then on."""
        absent = getattr(self._seen, "absent", None)
        shards = [AbsentShard(n) if absent and n in absent else shard for n, shard in enumerate(self.shards)]
        started = [call(number, shard) for number, shard in enumerate(shards)]
        answers = []
        for number, answer in enumerate(started):
            try:
                answers.append(_resolved(answer))
            except ShardUnavailableError as error:
                if absent is None:
                    raise
                logger.warning("searching on without shard %d: %s", number, error)
                absent.add(number)
                answers.append(call(number, AbsentShard(number)))
        return answers

    def reload(self) -> ShardedSearcher:
        """A searcher on every shard's live version now, sharing these towers; this one is closed."""
        fresh = [shard.reload() for shard in self.shards]
        for number, shard in enumerate(fresh):
            shard.shard_number = number
        return ShardedSearcher(self.index_dir, self.shard_map, fresh)

    def close(self) -> None:
        for shard in self.shards:
            shard.close()

    def document(self, doc_id: str):
        """The stored document with id ``doc_id``, from the shard that owns it, or None."""
        return _resolved(self.shards[shard_of(doc_id, len(self.shards))].document(doc_id))

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
        """As :meth:`dualsearch.read.searcher.Searcher.search`, over every shard."""
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
        partial: bool = False,
        **overrides: Any,
    ) -> list[list[SearchResult]]:
        """As :meth:`dualsearch.read.searcher.Searcher.search_batch`, over every shard. A shard that cannot
        answer (:class:`~dualsearch.errors.ShardUnavailableError`, a remote shard with no healthy
        replica) fails the search, unless ``partial``: the search then goes on without it, and
        :attr:`missing_shards` names it."""
        self._seen.absent = set() if partial else None
        _check_arguments(queries, k, nprobe)
        settings = self.settings.with_overrides(mode=mode, **overrides)
        depth = settings.candidate_depth(k)
        vectors = None
        if settings.mode != "lexical":
            vectors = self.encoder.encode_queries(queries, show_progress=show_progress)  # (m, d) float32
        nprobe = nprobe or self.shard_map.default_nprobe or None
        for attempt in range(RETRIES + 1):
            try:
                return self._search(vectors, queries, k, depth, nprobe, exact, settings, filter)
            except StaleVersionError:  # a shard published between two rounds: once more, on the new versions
                if attempt == RETRIES:
                    raise
        raise AssertionError("unreachable")

    def _search(self, vectors, queries, k, depth, nprobe, exact, settings, filter) -> list[list[SearchResult]]:
        """The three rounds: statistics, candidates, fetch."""
        corpus = ShardStatistics.combined(self._each(lambda _, shard: shard.statistics(queries, settings, filter)))
        self._check_fields(settings, filter, corpus)
        self._seen.versions = corpus.versions
        prefetch = min(self.prefetch, k)
        found, documents = self._candidates(vectors, queries, depth, nprobe, exact, settings, filter, corpus, prefetch)
        ranked = [rank_candidates(by_towers, by_terms, settings, depth)[:k] for by_towers, by_terms in found]
        return self._results(ranked, settings, corpus, documents)

    def _candidates(self, vectors, queries, depth, nprobe, exact, settings, filter, corpus, prefetch):
        """Per query: the corpus's top ``depth`` documents by the towers, found among its top passages as
        one index finds them (more passages asked for while too few documents are among them), and
        its top ``depth`` documents by BM25; and the stored documents the shards sent with them, by
        (shard, row)."""
        limit = corpus.live_passages if corpus.allowed_passages is None else corpus.allowed_passages
        passage_depth = min(limit, depth * PASSAGE_OVERSAMPLING) if settings.mode != "lexical" else 0
        found: list = [None] * len(queries)
        documents: dict[tuple[int, int], StoredHit] = {}
        pending = list(range(len(queries)))
        while pending:
            asked = [queries[n] for n in pending]
            asked_vectors = vectors[pending] if vectors is not None else None
            ask = partial(_ask_candidates, asked_vectors, asked, depth, passage_depth, nprobe, exact, settings, filter,
                          corpus, prefetch)  # fmt: skip
            per_shard = self._each(ask)
            for shard_number, answers in enumerate(per_shard):
                for answer in answers:
                    documents.update(((shard_number, row), hit) for row, hit in answer.documents.items())
            widen = []
            for position, number in enumerate(pending):
                passages = sorted((c for shard in per_shard for c in shard[position].by_towers), key=lambda c: -c.dense)
                by_towers = best_per_document(passages[:passage_depth])
                by_terms = sorted(
                    (c for shard in per_shard for c in shard[position].by_terms), key=lambda c: -c.lexical
                )
                found[number] = (by_towers[:depth], by_terms[:depth])
                if passage_depth and len(by_towers) < depth and passage_depth < limit:
                    widen.append(number)  # too few distinct documents among the passages fetched
            pending, passage_depth = widen, min(limit, passage_depth * PASSAGE_OVERSAMPLING)
        return found, documents

    def _check_fields(self, settings: SearchSettings, filter: Filter | None, corpus: ShardStatistics) -> None:
        """The errors one index gives for a field no document has, now that every shard has answered."""
        for field_name in [*(filter or {}), *(field for field, _, _ in settings.boosts)]:
            if field_name not in corpus.fields:
                raise InvalidInputError(f"no document in {self.index_dir} has the metadata field {field_name!r}")
        if settings.uses_prior and settings.prior_field not in corpus.fields:
            raise InvalidInputError(f"no document in {self.index_dir} has the prior field {settings.prior_field!r}")

    def _results(
        self,
        ranked: list[list[tuple[Candidate, float]]],
        settings: SearchSettings,
        corpus: ShardStatistics,
        documents: dict[tuple[int, int], StoredHit],
    ) -> list[list[SearchResult]]:
        """Each query's ``ranked`` as results, ranked 1, 2, ...: the stored documents the shards sent with
        their candidates (``documents``), and the others fetched from their shards (one request per
        shard for every query, and none when every document came with the candidates)."""
        missing = [sorted({c.row for hits in ranked for c, _ in hits if c.shard == n and (n, c.row) not in documents})
                   for n in range(len(self.shards))]  # fmt: skip
        fetched = self._each(
            lambda n, shard: (
                shard.stored_hits(missing[n], settings, corpus.prior_largest, corpus.versions[n]) if missing[n] else {}
            )
        )
        for number, hits in enumerate(fetched):
            documents.update(((number, row), hit) for row, hit in hits.items())
        return [
            [documents[c.shard, c.row].search_result(c, score, rank) for rank, (c, score) in enumerate(hits, 1)]
            for hits in ranked
        ]


class AbsentShard:
    """A shard a partial search goes on without: it holds no document, in every round."""

    version_name = "unavailable"

    def __init__(self, number: int) -> None:
        self.shard_number = number

    def statistics(self, queries, settings: SearchSettings, filter: Filter | None) -> ShardStatistics:
        lexical = None if settings.mode == "dense" else [CorpusStatistics(0, 0.0, {}) for _ in queries]
        return ShardStatistics(lexical, 0, None if filter is None else 0, None, frozenset(), (self.version_name,))

    def candidates(self, vectors, queries, *_) -> list[Candidates]:
        return [Candidates([], [], {}) for _ in queries]

    def stored_hits(self, *_) -> dict:
        return {}


class Pending:
    """An answer a remote shard will give: ``result()`` waits for it (a Ray Serve response, wrapped)."""

    def __init__(self, wait: Callable[[], Any]) -> None:
        self._wait = wait

    def result(self) -> Any:
        return self._wait()


def _resolved(answer: Any) -> Any:
    """A shard's answer: waited for when it is a remote one still to come."""
    return answer.result() if isinstance(answer, Pending) else answer


def _ask_candidates(
    vectors, queries, depth, passage_depth, nprobe, exact, settings, filter, corpus, prefetch, number, shard
):
    """Shard ``number``'s candidates round, for the versions the statistics round read."""
    return shard.candidates(
        vectors, queries, depth, passage_depth, nprobe, exact, settings, filter, corpus, corpus.versions[number],
        prefetch,
    )  # fmt: skip


def best_per_document(passages: Sequence[Candidate]) -> list[Candidate]:
    """MaxP over passages sorted best first: each document's first (best) passage, in that order.

    Example:
        >>> hits = [Candidate(0, 4, 0.9, None, 7, 0.0), Candidate(0, 4, 0.8, None, 8, 0.0)]
        >>> hits.append(Candidate(1, 4, 0.7, None, 2, 0.0))  # shard 1's row 4 is another document
        >>> [(c.shard, c.row, c.best_row) for c in best_per_document(hits)]
        [(0, 4, 7), (1, 4, 2)]
    """
    seen, documents = set(), []
    for candidate in passages:
        if (candidate.shard, candidate.row) not in seen:
            seen.add((candidate.shard, candidate.row))
            documents.append(candidate)
    return documents


def rank_candidates(
    by_towers: Sequence[Candidate], by_terms: Sequence[Candidate], settings: SearchSettings, depth: int
) -> list[tuple[Candidate, float]]:
    """One query's ranking from the corpus's top ``depth`` documents on each side (best first):
    (candidate, score), best first, with the fusion, the prior and the boosts applied as one index
    applies them.

    Example:
        >>> a = Candidate(0, 4, 0.9, None, 7, 0.0)
        >>> b = Candidate(1, 2, 0.8, None, 3, 0.0)
        >>> [(c.shard, c.row, s) for c, s in rank_candidates([a, b], [], SearchSettings(mode="dense"), 1)]
        [(0, 4, 0.9)]
    """
    by_towers, by_terms = list(by_towers)[:depth], list(by_terms)[:depth]
    if settings.mode == "dense":
        ranked = [(c, c.dense) for c in by_towers]
    elif settings.mode == "lexical":
        ranked = [(c, c.lexical) for c in by_terms]
    else:
        union = {(c.shard, c.row): c for c in by_towers}
        for candidate in by_terms:
            union.setdefault((candidate.shard, candidate.row), candidate)
        candidates = list(union.values())
        if not candidates:
            return []
        dense = np.array([c.dense for c in candidates], np.float32)
        lexical = np.array([c.lexical for c in candidates], np.float32)
        fused = fuse(dense, lexical, settings.fusion, settings.rrf_k, settings.dense_weight)
        ranked = [(candidates[i], float(fused[i])) for i in np.argsort(-fused, kind="stable")[:depth]]
    if settings.reranks and ranked:
        scores = np.array([score for _, score in ranked], np.float64)
        added = np.array([c.added for c, _ in ranked], np.float32)
        order, combined = rerank_with_prior(scores, added, 1.0)
        ranked = [(ranked[i][0], float(score)) for i, score in zip(order, combined)]
    return ranked
