"""Seeded choices over training data: which pairs to train on, which queries to hold out for dev, and
which documents make a dev corpus small enough to encode at every evaluation."""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Sequence

from dualsearch.errors import TrainingDataError
from dualsearch.finetune.data import TrainingData

logger = logging.getLogger(__name__)

Pair = tuple[str, str]  # (query id, document id)


def select_pairs(
    data: TrainingData,
    min_relevance: int = 1,
    max_positives_per_query: int | None = None,
    max_pairs: int | None = None,
    seed: int = 12,
) -> list[Pair]:
    """(query id, document id) pairs with relevance >= ``min_relevance``, optionally subsampled (seeded).

    Example:
        >>> from dualsearch.finetune.data import load_training_data
        >>> data = load_training_data("tiny", split="test")
        >>> len(select_pairs(data)), len(select_pairs(data, min_relevance=2))
        (18, 16)
    """
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for query_id in sorted(data.qrels):
        documents = sorted(d for d, relevance in data.qrels[query_id].items() if relevance >= min_relevance)
        if max_positives_per_query is not None and len(documents) > max_positives_per_query:
            documents = sorted(rng.sample(documents, max_positives_per_query))
        pairs.extend((query_id, document_id) for document_id in documents)
    if not pairs:
        raise TrainingDataError(f"{data.source}: no usable pairs with relevance >= {min_relevance}")
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = sorted(rng.sample(pairs, max_pairs))
    logger.info("%s: %d training pairs over %d queries", data.source, len(pairs), len({q for q, _ in pairs}))
    return pairs


def hold_out(data: TrainingData, fraction: float, seed: int = 12) -> tuple[TrainingData, TrainingData]:
    """Split by query: a seeded ``fraction`` of the queries (at least one) becomes the dev set.

    Example:
        >>> from dualsearch.finetune.data import load_training_data
        >>> train, dev = hold_out(load_training_data("tiny", split="test"), 0.25)
        >>> len(train.queries), len(dev.queries), set(train.queries) & set(dev.queries)
        (12, 4, set())
    """
    query_ids = sorted(data.qrels)
    count = max(1, round(fraction * len(query_ids)))
    if not 0 < fraction < 1 or count >= len(query_ids):
        raise TrainingDataError(
            f"{data.source}: cannot hold out {fraction} of {len(query_ids)} queries and keep some to train on"
        )
    dev_ids = set(random.Random(seed).sample(query_ids, count))
    train = data.subset((q for q in query_ids if q not in dev_ids), f"{data.source} (train part)")
    dev = data.subset(dev_ids, f"{data.source} (held-out {fraction:g})")
    logger.info("held out %d of %d queries for dev (seed %d)", len(dev_ids), len(query_ids), seed)
    return train, dev


def dev_corpus(dev: TrainingData, max_documents: int | None = None, seed: int = 12) -> dict[str, str]:
    """The documents to rank at dev evaluation: every judged one, plus a seeded sample of the others up
    to ``max_documents`` (all of them when None). Capping keeps evaluation during training cheap;
    metrics on the capped corpus differ from the full one's but rank models the same way. When more
    than ``max_documents`` are judged (NFCorpus), a seeded sample of the judged ones is the corpus.

    Example:
        >>> from dualsearch.finetune.data import load_training_data
        >>> dev = load_training_data("tiny", split="test")
        >>> len(dev_corpus(dev)), len(dev_corpus(dev, max_documents=20))
        (26, 20)
    """
    if max_documents is None or max_documents >= len(dev.documents):
        return dict(dev.documents)
    rng = random.Random(seed)
    judged = sorted({d for docs in dev.qrels.values() for d in docs})
    if len(judged) > max_documents:  # NFCorpus judges most of its corpus: sample the judged ones too
        logger.info("dev corpus: %d of %d judged documents (capped)", max_documents, len(judged))
        return {d: dev.documents[d] for d in sorted(rng.sample(judged, max_documents))}
    others = sorted(set(dev.documents) - set(judged))
    extra = rng.sample(others, min(len(others), max_documents - len(judged)))
    return {d: dev.documents[d] for d in sorted([*judged, *extra])}


def log_frequencies(positives: Sequence[str]) -> list[float]:
    """``log(p)`` of each row's positive, ``p`` its share of all rows' positives.

    Example:
        >>> [round(x, 4) for x in log_frequencies(["a", "b", "a", "a"])]
        [-0.2877, -1.3863, -0.2877, -0.2877]
    """
    counts = Counter(positives)
    total = len(positives)
    return [math.log(counts[document] / total) for document in positives]
