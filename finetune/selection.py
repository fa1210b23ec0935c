"""After training, choose on dev what is saved: the interpolation weight with the base towers (WiSE-FT)
and the document length, and measure how far the towers' rankings moved for queries unlike the dev ones.

**Which alpha.** Every alpha of :data:`ALPHA_GRID` is scored on dev (alpha 0 is the base towers, 1 the
tuned ones). We keep the *smallest* alpha whose dev nDCG@10 is within :data:`RELATIVE_TOLERANCE` of the
best: the closest to the base towers (least forgetting) that gives up almost nothing in-domain. The
largest such alpha is at or above the best one, so it would never move towards the base and could not
guard against forgetting.

**How far rankings moved.** Probe queries are the opening words of random documents of the user's
corpus: text from the corpus, but not the kind of question the training pairs ask. For each alpha we
report the mean share of each probe's top 10 (over the dev corpus) that the base towers also rank
in their top 10; 1.0 means no change, and a low figure on probes with a high dev score is the
signature of a model that learned the training queries and moved everything else.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

from dualsearch.finetune.evaluator import RetrievalEvaluator
from dualsearch.finetune.interpolate import State, interpolate
from dualsearch.finetune.model import set_max_lengths

logger = logging.getLogger(__name__)

ALPHA_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
RELATIVE_TOLERANCE = 0.01  # keep an alpha scoring at least 99% of the best dev nDCG@10
PROBE_QUERIES = 100
PROBE_WORDS = 8
PRIMARY = "dev_ndcg@10"


@dataclass
class Selection:
    """What was chosen on dev, with every score behind the choice (saved in ``train_report.json``)."""

    alpha: float = 1.0
    grid: list[float] = field(default_factory=list)
    tolerance: float = RELATIVE_TOLERANCE
    dev_ndcg_by_alpha: dict[str, float] = field(default_factory=dict)
    probe_overlap_by_alpha: dict[str, float] = field(default_factory=dict)  # top-10 shared with the base
    document_length: int | None = None
    dev_ndcg_by_document_length: dict[str, float] = field(default_factory=dict)  # at the chosen alpha
    before: dict[str, float] = field(default_factory=dict)  # base towers, at the chosen document length
    after: dict[str, float] = field(default_factory=dict)  # saved towers


def probe_queries(documents: dict[str, str], count: int = PROBE_QUERIES, seed: int = 12) -> list[str]:
    """The first :data:`PROBE_WORDS` words of ``count`` seeded random documents.

    Example:
        >>> probe_queries({"a": "one two three", "b": " ", "c": "four"}, count=5)
        ['four', 'one two three']
    """
    texts = sorted(" ".join(text.split()[:PROBE_WORDS]) for text in documents.values())
    texts = [text for text in texts if text]
    return sorted(random.Random(seed).sample(texts, min(count, len(texts))))


def ranking_overlap(reference: list[list[str]], rankings: list[list[str]]) -> float:
    """Mean share of each reference ranking's documents that the other ranking also holds.

    Example:
        >>> ranking_overlap([["a", "b"], ["c", "d"]], [["b", "a"], ["c", "e"]])
        0.75
    """
    if not reference:
        return 1.0
    shares = [len(set(left) & set(right)) / max(len(left), 1) for left, right in zip(reference, rankings)]
    return round(sum(shares) / len(shares), 4)


def choose_alpha(scores: dict[float, float], tolerance: float = RELATIVE_TOLERANCE) -> float:
    """The smallest alpha whose score is at least ``(1 - tolerance)`` times the best.

    Example:
        >>> choose_alpha({0.0: 0.60, 0.5: 0.695, 1.0: 0.70})
        0.5
        >>> choose_alpha({0.0: 0.60, 0.5: 0.65, 1.0: 0.70})
        1.0
    """
    best = max(scores.values())
    return min(alpha for alpha, score in scores.items() if score >= (1 - tolerance) * best)


def select(
    model,
    evaluator: RetrievalEvaluator,
    snapshots: tuple[dict[str, State], dict[str, State]],
    base_run: tuple[dict[str, float], list[list[str]]],
    lengths: tuple[int, int, list[int]],
    interpolate_towers: bool = True,
    frozen: frozenset[str] = frozenset(),
) -> Selection:
    """Score the grid at the training length, choose alpha, then the document length at that alpha;
    leaves ``model`` holding the chosen towers.

    Args:
        snapshots: (base, tuned) weights per tower.
        base_run: the base towers' dev metrics at the training length and their probe rankings.
        lengths: (query length, training document length, document lengths the towers may be saved with).
    """
    base, tuned = snapshots
    before, base_rankings = base_run
    query_length, training_length, candidates = lengths
    chosen = Selection(grid=list(ALPHA_GRID) if interpolate_towers else [1.0])
    results: dict[float, dict[str, float]] = {}
    for alpha in chosen.grid:
        if alpha == 0.0:
            results[alpha], rankings = before, base_rankings
        else:
            interpolate(model, base, tuned, alpha, frozen)
            results[alpha], rankings = evaluator(model), evaluator.probe_rankings
        chosen.dev_ndcg_by_alpha[str(alpha)] = round(results[alpha][PRIMARY], 6)
        chosen.probe_overlap_by_alpha[str(alpha)] = ranking_overlap(base_rankings, rankings)
    chosen.alpha = choose_alpha({alpha: metrics[PRIMARY] for alpha, metrics in results.items()})
    logger.info("interpolation: dev nDCG@10 by alpha %s; keeping alpha %s", chosen.dev_ndcg_by_alpha, chosen.alpha)
    by_length = {training_length: results[chosen.alpha]} if training_length in candidates else {}
    for length in candidates:
        if length not in by_length:
            set_max_lengths(model, query_length, length)
            interpolate(model, base, tuned, chosen.alpha, frozen)
            by_length[length] = evaluator(model)
    chosen.dev_ndcg_by_document_length = {str(n): round(m[PRIMARY], 6) for n, m in by_length.items()}
    chosen.document_length = max(candidates, key=lambda n: (by_length[n][PRIMARY], n == training_length))
    chosen.after, chosen.before = by_length[chosen.document_length], before
    set_max_lengths(model, query_length, chosen.document_length)
    if chosen.document_length != training_length:
        interpolate(model, base, tuned, 0.0, frozen)
        chosen.before = evaluator(model)  # the base towers at the length they are compared at
    interpolate(model, base, tuned, chosen.alpha, frozen)
    return chosen
