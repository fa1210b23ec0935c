"""Search a sharded index as one: :class:`ShardedSearcher`.

The queries are encoded once; every shard gives its part of the corpus statistics, then its
candidates scored with the whole corpus's statistics, then the stored documents of the merged top
``k`` (the three rounds of :mod:`dualsearch.read.shard`). The merge (:func:`merge_candidates`) ranks
as one index of the same documents does: the same candidates on each side, the same fusion over
them, the same prior and boosts. Only the order of documents with equal scores may differ (one index
orders them by row, and rows differ between one index and its shards).

This is the reference a distributed search is checked against: the shards run in this process, one
after another.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dualsearch.defaults import K
from dualsearch.errors import InvalidInputError
from dualsearch.index.lexical_segments import CorpusStatistics
from dualsearch.index.shards import ShardMap, shard_of
from dualsearch.ranking.filters import Filter
from dualsearch.ranking.fusion import fuse
from dualsearch.ranking.priors import rerank_with_prior
from dualsearch.ranking.settings import SearchSettings
from dualsearch.read.searcher import SearchResult, _check_arguments
from dualsearch.read.shard import Candidate, ShardSearcher, ShardStatistics
from dualsearch.towers.contract import Encoder

logger = logging.getLogger(__name__)


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
    def version_name(self) -> str:
        """Each shard's live version, joined: ``v000004+v000002``."""
        return "+".join(shard.version_dir.name for shard in self.shards)

    def explain(self, query: str, results: Sequence[SearchResult]) -> list[dict]:
        """As :meth:`dualsearch.read.searcher.Searcher.explain`; BM25's shares with the whole corpus's statistics."""
        from dualsearch.ranking.explain import explain_results

        return explain_results(self.encoder, query, results, self._lexical_shares)

    def _lexical_shares(self, query: str, doc_ids: list[str]) -> list[tuple[str, np.ndarray]]:
        corpus = CorpusStatistics.combined([shard.lexical.statistics(query) for shard in self.shards])
        shares: dict[str, np.ndarray] = {}
        for number, shard in enumerate(self.shards):
            positions = [i for i, doc_id in enumerate(doc_ids) if shard_of(doc_id, len(self.shards)) == number]
            located = shard.store.lookup([doc_ids[i] for i in positions])
            rows = [located[doc_ids[i]].doc_row for i in positions]
            for term, values in shard.lexical.term_scores(query, rows, corpus) if rows else []:
                shares.setdefault(term, np.zeros(len(doc_ids), np.float32))[positions] = values
        return list(shares.items())

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
        return self.shards[shard_of(doc_id, len(self.shards))].document(doc_id)

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
        **overrides: Any,
    ) -> list[list[SearchResult]]:
        """As :meth:`dualsearch.read.searcher.Searcher.search_batch`, over every shard."""
        _check_arguments(queries, k, nprobe)
        settings = self.settings.with_overrides(mode=mode, **overrides)
        depth = max(k, settings.candidates) if settings.mode == "hybrid" or settings.reranks else k
        corpus = ShardStatistics.combined([shard.statistics(queries, settings, filter) for shard in self.shards])
        self._check_fields(settings, filter, corpus)
        vectors = None
        if settings.mode != "lexical":
            vectors = self.encoder.encode_queries(queries, show_progress=show_progress)  # (m, d) float32
        nprobe = nprobe or self.shard_map.default_nprobe or None
        per_shard = [
            shard.candidates(vectors, queries, depth, nprobe, exact, settings, filter, corpus) for shard in self.shards
        ]
        answers = []
        for number in range(len(queries)):
            ranked = merge_candidates([found[number] for found in per_shard], settings, depth)[:k]
            answers.append(self._results(ranked, settings, corpus.prior_largest))
        return answers

    def _check_fields(self, settings: SearchSettings, filter: Filter | None, corpus: ShardStatistics) -> None:
        """The errors one index gives for a field no document has, now that every shard has answered."""
        for field_name in filter or {}:
            if field_name not in corpus.fields:
                raise InvalidInputError(f"no document in {self.index_dir} has the metadata field {field_name!r}")
        if settings.uses_prior and settings.prior_field not in corpus.fields:
            raise InvalidInputError(f"no document in {self.index_dir} has the prior field {settings.prior_field!r}")
        for field_name, _, _ in settings.boosts:
            if field_name not in corpus.fields:
                raise InvalidInputError(f"no document in {self.index_dir} has the metadata field {field_name!r}")

    def _results(
        self, ranked: list[tuple[Candidate, float]], settings: SearchSettings, largest: float | None
    ) -> list[SearchResult]:
        """The stored documents of ``ranked``, each fetched from its shard, ranked 1, 2, ..."""
        found: dict[tuple[int, int], SearchResult] = {}
        for number, shard in enumerate(self.shards):
            mine = [(candidate, score) for candidate, score in ranked if candidate.shard == number]
            if mine:
                results = shard.results(mine, settings, largest)
                found.update({(number, c.row): r for (c, _), r in zip(mine, results, strict=True)})
        return [
            dataclasses.replace(found[candidate.shard, candidate.row], rank=rank)
            for rank, (candidate, _) in enumerate(ranked, 1)
        ]


def merge_candidates(
    per_shard: Sequence[tuple[list[Candidate], list[Candidate]]], settings: SearchSettings, depth: int
) -> list[tuple[Candidate, float]]:
    """One query's ranking from every shard's candidates: (candidate, score), best first.

    Each side's top ``depth`` over all shards is the whole corpus's top ``depth`` on that side; the
    fusion, the prior and the boosts then apply as one index applies them.

    Example:
        >>> a = Candidate(0, 4, 0.9, None, 7, 0.0)
        >>> b = Candidate(1, 2, 0.8, None, 3, 0.0)
        >>> [(c.shard, c.row, s) for c, s in merge_candidates([([a], []), ([b], [])], SearchSettings(mode="dense"), 1)]
        [(0, 4, 0.9)]
    """
    by_towers = sorted((c for towers, _ in per_shard for c in towers), key=lambda c: -c.dense)[:depth]
    by_terms = sorted((c for _, terms in per_shard for c in terms), key=lambda c: -c.lexical)[:depth]
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
