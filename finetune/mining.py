"""Hard negatives: documents a retriever ranks high for a query but that are not judged relevant.

Two retrievers rank the training corpus: BM25 (bm25s) and the towers themselves (before training).
From each ranking, :func:`select_negatives` keeps candidates inside a rank window and, optionally,
below a margin under the positive's own score. Both guards keep likely *false* negatives (relevant but
unjudged documents, which sit at the very top) out of the loss.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import zip_longest

import numpy as np

from dualsearch.finetune.data import TrainingData
from dualsearch.index.lexical import import_bm25s

logger = logging.getLogger(__name__)

Pair = tuple[str, str]  # (query id, document id)


@dataclass(frozen=True)
class NegativeWindow:
    """Which ranked candidates may become negatives.

    Attributes:
        range_min: Skip ranks below this (0-based; positives count as ranks): the very top is where
            unjudged relevant documents hide.
        range_max: Consider ranks below this only.
        margin: If set, keep a candidate only if ``score <= positive_score - margin * |positive_score|``.
    """

    range_min: int = 0
    range_max: int = 50
    margin: float | None = None


@dataclass(frozen=True)
class Ranking:
    """One query's ranking by one retriever."""

    hits: list[tuple[str, float]]  # (document id, score), best first, ``range_max`` long at most
    positive_scores: dict[str, float]  # the retriever's score of each positive document


def select_negatives(
    ranking: Ranking,
    positives: set[str],
    positive_id: str,
    window: NegativeWindow,
    count: int,
    exclude: Sequence[str] = (),
) -> list[str]:
    """Up to ``count`` negatives for the pair (query, ``positive_id``), hardest first.

    Example:
        >>> ranking = Ranking([("p", 9.0), ("a", 8.9), ("b", 6.0), ("c", 5.0)], {"p": 9.0})
        >>> select_negatives(ranking, {"p"}, "p", NegativeWindow(), 2)
        ['a', 'b']
        >>> select_negatives(ranking, {"p"}, "p", NegativeWindow(range_min=2), 2)
        ['b', 'c']
        >>> select_negatives(ranking, {"p"}, "p", NegativeWindow(margin=0.1), 2)  # 8.9 > 9 - 0.9
        ['b', 'c']
    """
    positive_score = ranking.positive_scores.get(positive_id)
    chosen: list[str] = []
    for rank, (document_id, score) in enumerate(ranking.hits[: window.range_max]):
        if len(chosen) == count:
            break
        if rank < window.range_min or document_id in positives or document_id in exclude or document_id in chosen:
            continue
        if (
            window.margin is not None
            and positive_score is not None
            and score > positive_score - window.margin * abs(positive_score)
        ):
            continue
        chosen.append(document_id)
    return chosen


def _ranking(
    scores: np.ndarray, document_ids: list[str], positives: Sequence[str], depth: int, position: dict[str, int]
) -> Ranking:
    """Top ``depth`` of one query's scores over the corpus, (n_documents,) float."""
    depth = min(depth, len(document_ids))
    top = np.argpartition(-scores, depth - 1)[:depth]
    top = top[np.argsort(-scores[top], kind="stable")]
    return Ranking(
        [(document_ids[i], float(scores[i])) for i in top],
        {d: float(scores[position[d]]) for d in positives if d in position},
    )


class Bm25Ranker:
    """BM25 (bm25s, English stopwords, no stemming) over a corpus of id -> text.

    Example:
        >>> ranker = Bm25Ranker({"a": "green tea leaves", "b": "espresso coffee"})
        >>> ranker.rank("green tea", ["a"], depth=2).hits[0][0]
        'a'
    """

    def __init__(self, documents: dict[str, str]) -> None:
        bm25s = import_bm25s()

        started = time.perf_counter()
        self.document_ids = list(documents)
        self.position = {d: i for i, d in enumerate(self.document_ids)}
        self.retriever = bm25s.BM25()
        tokens = bm25s.tokenize([documents[d] for d in self.document_ids], stopwords="en", show_progress=False)
        self.retriever.index(tokens, show_progress=False)
        logger.info("BM25 indexed %d documents in %.1fs", len(self.document_ids), time.perf_counter() - started)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for one query, (n_documents,) float32."""
        bm25s = import_bm25s()

        tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
        if not tokens:
            return np.zeros(len(self.document_ids), dtype=np.float32)
        return np.asarray(self.retriever.get_scores(tokens), dtype=np.float32)

    def rank(self, query: str, positives: Sequence[str], depth: int) -> Ranking:
        return _ranking(self.scores(query), self.document_ids, positives, depth, self.position)


def bm25_rankings(data: TrainingData, depth: int) -> dict[str, Ranking]:
    """BM25 ranking of the corpus for every query of ``data``."""
    ranker = Bm25Ranker(data.documents)
    return {q: ranker.rank(text, list(data.qrels.get(q, {})), depth) for q, text in data.queries.items()}


def tower_rankings(
    model, data: TrainingData, depth: int, batch_size: int = 32, show_progress: bool = False, chunk: int = 256
) -> dict[str, Ranking]:
    """Ranking of the corpus by the towers of ``model`` (cosine), for every query of ``data``."""
    started = time.perf_counter()
    document_ids, query_ids = list(data.documents), list(data.queries)
    documents = model.encode_document(
        [data.documents[d] for d in document_ids],
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    queries = model.encode_query(
        [data.queries[q] for q in query_ids],
        batch_size=batch_size,
        show_progress_bar=False,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )  # (n_queries, d)
    position = {d: i for i, d in enumerate(document_ids)}
    rankings: dict[str, Ranking] = {}
    for start in range(0, len(query_ids), chunk):
        scores = queries[start : start + chunk] @ documents.T  # (chunk, n_documents)
        for row, query_id in enumerate(query_ids[start : start + chunk]):
            rankings[query_id] = _ranking(
                scores[row], document_ids, list(data.qrels.get(query_id, {})), depth, position
            )
    logger.info(
        "towers ranked %d documents for %d queries in %.1fs",
        len(document_ids),
        len(query_ids),
        time.perf_counter() - started,
    )
    return rankings


def negatives_for_pairs(
    data: TrainingData,
    pairs: Sequence[Pair],
    count: int,
    rankings: Sequence[dict[str, Ranking]],
    window: NegativeWindow,
    seed: int = 12,
) -> list[list[str]]:
    """``count`` negative document ids for each pair: the data's own negatives first, then mined ones
    (alternating between retrievers), then, if the window left too few, seeded random documents.

    Example:
        >>> from dualsearch.finetune.data import load_training_data
        >>> data = load_training_data("tiny", split="test")
        >>> negatives = negatives_for_pairs(data, [("q1", "tea-black")], 1, [bm25_rankings(data, 10)], NegativeWindow())
        >>> negatives[0][0] in data.qrels["q1"]
        False
    """
    rng, filled = random.Random(seed), 0
    all_ids = list(data.documents)
    result: list[list[str]] = []
    for query_id, document_id in pairs:
        positives = set(data.qrels[query_id])
        chosen = [n for n in data.negatives.get((query_id, document_id), ()) if n not in positives][:count]
        mined = [
            select_negatives(r[query_id], positives, document_id, window, count, chosen)
            for r in rankings
            if query_id in r
        ]
        for candidate in (c for group in zip_longest(*mined) for c in group if c is not None):
            if len(chosen) < count and candidate not in chosen:
                chosen.append(candidate)
        while len(chosen) < count and len(positives) + len(chosen) < len(all_ids):
            candidate = rng.choice(all_ids)
            if candidate not in positives and candidate not in chosen:
                chosen.append(candidate)
                filled += 1
        result.append(chosen)
    if filled:
        logger.info("filled %d negatives with random documents (the window and margin left too few)", filled)
    return result
