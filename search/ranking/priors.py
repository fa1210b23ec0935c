"""Document priors: a numeric metadata field that adds to every score, the way static ranks
(PageRank, popularity) join relevance in web search.

An index (or one query) names the field and a weight (:class:`~dualsearch.ranking.settings.SearchSettings`
``prior_field``, ``prior_weight``). The field holds a non-negative number per document, typically a
count (views, links, how often code uses a name). Counts are heavy-tailed, so the prior is
``log(1 + value) / log(1 + largest value)``, in [0, 1]; a document without the field gets 0. The
ranking score becomes ``score + weight * prior``. The score's scale depends on the mode (a cosine for
``dense``, [0, 1] for the convex fusion, BM25 for ``lexical``), so a weight is chosen for one mode.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from dualsearch.corpora.counts import count_problem, count_rule

logger = logging.getLogger(__name__)


def prior_scores(values: Sequence, field: str, largest: float | None = None) -> np.ndarray:
    """Each document's prior in [0, 1] from its ``field`` values (None: no value, prior 0): (n,) float32,
    scaled by the largest value (``largest``: a whole sharded corpus's, :func:`largest_count`, instead
    of these values' own).

    Writes refuse a value that is not a count (:mod:`dualsearch.corpora.counts`); one stored by a
    release that did not check counts 0, with a warning, so that one bad document never fails the
    index's every search.

    Example:
        >>> prior_scores([0, 9, None, 99], "views").round(3).tolist()
        [0.0, 0.5, 0.0, 1.0]
        >>> prior_scores(["many", 9], "views").round(3).tolist()
        [0.0, 1.0]
    """
    numbers, bad = _counts(values)
    if bad:
        logger.warning(
            "%s; %d documents hold something else (first: %r): they count 0. Fix them with `dualsearch add`",
            count_rule(field),
            len(bad),
            bad[0],
        )
    largest = numbers.max(initial=0.0) if largest is None else largest
    if largest <= 0:
        return np.zeros(len(values), np.float32)
    return (np.log1p(numbers) / np.log1p(largest)).astype(np.float32)


def largest_count(values: Sequence) -> float:
    """The largest count among ``values`` (0 when none is one): what :func:`prior_scores` scales by.

    Example:
        >>> largest_count([3, None, "many", 7])
        7.0
    """
    return float(_counts(values)[0].max(initial=0.0))


def _counts(values: Sequence) -> tuple[np.ndarray, list]:
    """(n,) float64 of the values that are counts (0 elsewhere), and the values that are something else."""
    numbers = np.zeros(len(values), np.float64)
    bad = []
    for row, value in enumerate(values):
        if count_problem(value) is not None:
            bad.append(value)
        elif value is not None:
            numbers[row] = value
    return numbers, bad


def rerank_with_prior(scores: np.ndarray, priors: np.ndarray, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """New order (best first) and scores of candidates once ``weight * prior`` is added.

    Example:
        >>> order, scores = rerank_with_prior(np.array([0.9, 0.8]), np.array([0.0, 1.0]), 0.2)
        >>> order.tolist(), scores.round(2).tolist()
        ([1, 0], [1.0, 0.9])
    """
    combined = scores + weight * priors
    order = np.argsort(-combined, kind="stable")
    return order, combined[order]
