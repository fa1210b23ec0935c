"""Combine the dense and the lexical ranking of the same documents into one.

Two fusions, arrays in and arrays out, over a candidate set (the union of both sides' top hits),
with both scores known for every candidate:

- reciprocal-rank fusion (Cormack et al., SIGIR 2009): ``sum 1 / (rrf_k + rank)`` over the two
  rankings; it ignores score scales entirely;
- a convex combination of min-max normalised scores: ``w * dense + (1 - w) * lexical``.
"""

from __future__ import annotations

import numpy as np

from dualsearch.errors import InvalidInputError

FUSIONS = ("rrf", "convex")


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each score, highest first (ties broken by position).

    Example:
        >>> ranks(np.array([0.2, 0.9, 0.5])).tolist()
        [3, 1, 2]
    """
    order = np.argsort(-scores, kind="stable")
    result = np.empty(len(scores), np.int64)
    result[order] = np.arange(1, len(scores) + 1)
    return result


def reciprocal_rank_fusion(dense: np.ndarray, lexical: np.ndarray, rrf_k: int = 60) -> np.ndarray:
    """RRF scores of candidates given their dense and lexical scores, (m,) each.

    Example:
        >>> reciprocal_rank_fusion(np.array([0.9, 0.1]), np.array([1.0, 7.0]), rrf_k=0).tolist()
        [1.5, 1.5]
    """
    return 1.0 / (rrf_k + ranks(dense)) + 1.0 / (rrf_k + ranks(lexical))


def min_max(scores: np.ndarray) -> np.ndarray:
    """Scores scaled to [0, 1] (all zeros when they are all equal)."""
    low, high = float(scores.min()), float(scores.max())
    return np.zeros_like(scores) if high <= low else (scores - low) / (high - low)


def convex_fusion(dense: np.ndarray, lexical: np.ndarray, dense_weight: float) -> np.ndarray:
    """``w * minmax(dense) + (1 - w) * minmax(lexical)`` over candidates.

    Example:
        >>> convex_fusion(np.array([0.9, 0.5, 0.1]), np.array([0.0, 10.0, 5.0]), 0.5).tolist()
        [0.5, 0.75, 0.25]
    """
    return dense_weight * min_max(dense) + (1.0 - dense_weight) * min_max(lexical)


def fuse(dense: np.ndarray, lexical: np.ndarray, fusion: str, rrf_k: int, dense_weight: float) -> np.ndarray:
    if fusion == "rrf":
        return reciprocal_rank_fusion(dense, lexical, rrf_k)
    if fusion == "convex":
        return convex_fusion(dense, lexical, dense_weight)
    raise InvalidInputError(f"unknown fusion {fusion!r}; choose from {', '.join(FUSIONS)}")
