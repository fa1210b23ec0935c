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
from dataclasses import asdict, dataclass, field
from typing import Any

from dualsearch.errors import InvalidInputError
from dualsearch.finetune.config import FinetuneConfig
from dualsearch.finetune.evaluator import RetrievalEvaluator
from dualsearch.finetune.interpolate import State, interpolate, snapshot
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


def document_lengths(config: FinetuneConfig, base_length: int, has_dev: bool) -> tuple[int, list[int]]:
    """The document length to train at, and those the towers may be saved with (chosen on dev). The
    query-only run keeps the document tower exactly as it is, its length too: an index's vectors were
    encoded with it."""
    if config.train == "query":
        if config.max_document_length not in (None, base_length):
            raise InvalidInputError(
                f"training the query tower alone keeps the document tower as it is, with the base's length "
                f"({base_length} tokens); max_document_length {config.max_document_length} would change it"
            )
        return base_length, [base_length]
    training = config.train_max_document_length or config.max_document_length or base_length
    if config.max_document_length:
        return training, [config.max_document_length]
    return training, list(dict.fromkeys([training, base_length] if has_dev else [training]))


def select_or_keep(model, evaluator, base, base_run, lengths, config: FinetuneConfig, frozen):
    """What to save: chosen on dev, or the trained towers as they are when there is no dev set."""
    tuned = snapshot(model)
    if evaluator is None:
        query_length, _, candidates = lengths
        set_max_lengths(model, query_length, candidates[0])
        return Selection(grid=[1.0], document_length=candidates[0])
    return select(model, evaluator, (base, tuned), base_run, lengths, config.interpolate, frozen)


def selection_report(selection: Selection) -> dict[str, Any]:
    """What ``train_report.json`` keeps of a selection (its before/after are the report's own)."""
    report = asdict(selection)
    del report["before"], report["after"]
    return report


def selection_warnings(selection: Selection, has_dev: bool) -> list[str]:
    """What a user must be told about the saved towers."""
    if not has_dev:
        return ["no dev set: the towers are saved as trained, with no check against forgetting"]
    before, after = selection.before.get("dev_ndcg@10", 0.0), selection.after.get("dev_ndcg@10", 0.0)
    if selection.alpha == 0.0:
        return [f"training did not help on dev (nDCG@10 {before:.4f} before): the saved towers are the base towers"]
    if after < before:
        return [f"the saved towers score below the base towers on dev (nDCG@10 {after:.4f} against {before:.4f})"]
    return []
