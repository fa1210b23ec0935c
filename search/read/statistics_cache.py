"""What a remote shard's statistics round answered, kept for the searches after it:
:class:`StatisticsCache`.

The first round of a sharded search (:meth:`dualsearch.read.shard.ShardSearcher.statistics`) asks
each shard for facts of one version of it: its live passages, BM25's document count and total
length, the document frequency of each query term, which of the named fields some document has, the
prior field's largest count. None of them changes while the version stays, so an ingress that keeps
them answers that round itself for a search whose terms and fields it has seen, and the search takes
one round trip to the shards fewer. A filter's passages are not kept (the filter is the request's
own): a filtered search always asks.

The cache belongs to one version of one shard. Its owner starts a new one when the shard reports
another version, and :meth:`forget` drops it when a later round found its version gone.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence

from dualsearch.index.lexical import make_stemmer, tokenize
from dualsearch.index.lexical_segments import CorpusStatistics
from dualsearch.ranking.filters import Filter
from dualsearch.ranking.settings import SearchSettings
from dualsearch.read.shard import ShardStatistics, named_fields

TERMS_KEPT = 200_000  # document frequencies kept per shard, least recently used dropped first (a few MB)


class StatisticsCache:
    """One shard version's statistics, learnt from its answers to the statistics round.

    Example:
        >>> cache = StatisticsCache()
        >>> settings = SearchSettings(mode="lexical")
        >>> cache.answer(["green tea"], settings, None) is None  # nothing learnt yet: ask the shard
        True
        >>> bm25 = CorpusStatistics(3, 9.0, {"green": 1, "tea": 2})  # 3 documents, 9 tokens, each term's frequency
        >>> asked = ShardStatistics([bm25], 5, None, None, frozenset(), ("v000002",))
        >>> cache.learn(["green tea"], settings, None, asked) is asked
        True
        >>> known = cache.answer(["tea"], settings, None)  # a term learnt: the shard is not asked
        >>> known.lexical, known.live_passages, known.versions
        ([CorpusStatistics(documents=3, total_length=9.0, frequencies={'tea': 2})], 5, ('v000002',))
    """

    def __init__(self, terms_kept: int = TERMS_KEPT) -> None:
        self.terms_kept = terms_kept
        self._lock = threading.Lock()  # the ingress's request threads share a shard's cache
        self._stemmer = make_stemmer()
        self.forget()

    def forget(self) -> None:
        """Drop everything: the next statistics round goes to the shard."""
        with self._lock:
            self.version: str | None = None
            self._live_passages: int | None = None
            self._bm25: tuple[int, float] | None = None  # documents, total length
            self._frequencies: OrderedDict[str, int] = OrderedDict()
            self._has_field: dict[str, bool] = {}
            self._largest: dict[str, float | None] = {}

    def answer(self, queries: Sequence[str], settings: SearchSettings, filter: Filter | None) -> ShardStatistics | None:
        """The shard's statistics for this search from what was learnt, or None when the shard must be asked."""
        if filter is not None:
            return None
        named = named_fields(settings, None)
        terms = None if settings.mode == "dense" else [self._terms(query) for query in queries]
        with self._lock:
            if self.version is None or any(name not in self._has_field for name in named):
                return None
            if settings.uses_prior and settings.prior_field not in self._largest:
                return None
            lexical = None
            if terms is not None:
                if self._bm25 is None or any(term not in self._frequencies for each in terms for term in each):
                    return None
                for each in terms:
                    for term in each:
                        self._frequencies.move_to_end(term)
                documents, total_length = self._bm25
                lexical = [
                    CorpusStatistics(documents, total_length, {t: self._frequencies[t] for t in each}) for each in terms
                ]
            largest = self._largest[settings.prior_field] if settings.uses_prior else None
            fields = frozenset(name for name in named if self._has_field[name])
            return ShardStatistics(lexical, self._live_passages, None, largest, fields, (self.version,))

    def learn(
        self, queries: Sequence[str], settings: SearchSettings, filter: Filter | None, answer: ShardStatistics
    ) -> ShardStatistics:
        """Keep what the shard's ``answer`` to this search tells of its version (a newer version than
        the one kept replaces it) and return ``answer``."""
        version = answer.versions[0]
        if version != self.version:
            self.forget()
        with self._lock:
            self.version, self._live_passages = version, answer.live_passages
            for name in named_fields(settings, filter):
                self._has_field[name] = name in answer.fields
            if settings.uses_prior:
                self._largest[settings.prior_field] = answer.prior_largest
            for statistics in answer.lexical or ():
                self._bm25 = statistics.documents, statistics.total_length
                self._frequencies.update(statistics.frequencies)
                for term in statistics.frequencies:
                    self._frequencies.move_to_end(term)
            while len(self._frequencies) > self.terms_kept:
                self._frequencies.popitem(last=False)
        return answer

    def _terms(self, query: str) -> list[str]:
        """The distinct terms BM25 reads of ``query``, as the shard's lexical index finds them."""
        return list(Counter(tokenize([query], self._stemmer)[0]))
