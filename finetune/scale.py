"""The loss's scale for towers that compare by dot product or Euclidean distance.

MultipleNegativesRankingLoss multiplies every score by a scale before its softmax, so the scale sets
how far apart the logits of one query's documents are. For cosine, 20 is the measured choice (scores
in [-1, 1]). Dot products and distances have no fixed range: all-MiniLM-L6-v2 without its
``Normalize`` spreads a SciFact train query's documents over 2.7 in dot product and 0.55 in distance
(90th minus 10th percentile), against 0.26 in cosine, so one fixed scale would make the logits ten
times flatter for one similarity than for another (a first Euclidean run at scale 1 barely moved from
its base). The default therefore matches cosine's: the scale that gives the base towers' scores on
a sample of the training data the spread cosine has at 20.
"""

from __future__ import annotations

import random

import numpy as np

from dualsearch.finetune.data import TrainingData

COSINE_SCALE = 20.0
SAMPLE_QUERIES = 200
SAMPLE_DOCUMENTS = 300


def score_spread(scores: np.ndarray) -> float:
    """The median over queries (rows) of the gap between a query's 90th and 10th percentile scores.

    Example:
        >>> score_spread(np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]]))
        8.0
    """
    return float(np.median(np.percentile(scores, 90, axis=1) - np.percentile(scores, 10, axis=1)))


def loss_scores(queries: np.ndarray, documents: np.ndarray, similarity: str) -> np.ndarray:
    """Every query against every document as the loss scores them
    (:func:`~dualsearch.finetune.trainer.loss_similarity`: its Euclidean score is the negated distance,
    where the index ranks by the squared one)."""
    import torch

    from dualsearch.finetune.trainer import loss_similarity

    scores = loss_similarity(similarity)(torch.from_numpy(queries).double(), torch.from_numpy(documents).double())
    return scores.numpy()


def spread_matched_scale(model, train: TrainingData, similarity: str, seed: int = 12) -> tuple[float, str]:
    """The scale at which ``model``'s ``similarity`` scores spread a sample of ``train``'s queries over
    its documents as cosine does at :data:`COSINE_SCALE`, and the rule, said, for the run's report."""
    rng = random.Random(seed)
    query_ids = rng.sample(sorted(train.queries), min(SAMPLE_QUERIES, len(train.queries)))
    document_ids = rng.sample(sorted(train.documents), min(SAMPLE_DOCUMENTS, len(train.documents)))
    queries = model.encode_query([train.queries[q] for q in query_ids], convert_to_numpy=True)
    documents = model.encode_document([train.documents[d] for d in document_ids], convert_to_numpy=True)
    queries, documents = queries.astype(np.float64), documents.astype(np.float64)
    cosine = score_spread(loss_scores(queries, documents, "cosine"))
    own = score_spread(loss_scores(queries, documents, similarity))
    scale = round(COSINE_SCALE * cosine / max(own, 1e-9), 3)
    reason = (
        f"scale {scale:g}: the base towers' {similarity} scores spread {own:.3f} over a sample of the training "
        f"data ({len(query_ids)} queries x {len(document_ids)} documents) where cosine spreads {cosine:.3f}, "
        f"so {scale:g} gives the logits the spread cosine has at {COSINE_SCALE:g}"
    )
    return scale, reason
