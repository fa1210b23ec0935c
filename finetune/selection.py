"""After training, choose on dev what is saved: the interpolation weight of each tower with its base
(WiSE-FT) and the document length, and measure how far the towers' rankings moved for queries unlike
the dev ones.

**Which alphas.** Each tower that was trained gets its own weight from :data:`ALPHA_GRID` (0 is the base
tower, 1 the tuned one), and every combination is scored on dev: 25 for a query and a document tower,
5 for one shared tower or a query tower trained alone. Each tower's setting is encoded once, so the 25
cost about as much as 5. Among the combinations whose dev nDCG@10 is within :data:`RELATIVE_TOLERANCE`
of the best we keep the one that moves the towers least, the document tower first
(:data:`MOVE_ORDER`): the closest to the base (least forgetting) that gives up almost nothing
in-domain. The document tower comes first because it is the one that forgets: trained on NFCorpus,
moving it alone costs SciFact about three times what moving the query tower alone does
(results/finetune_tower_alphas.json; ``docs/finetune-notes.md``, "Which tower forgets"). The largest
alpha within the tolerance is at or above the best one, so it would never move towards the base and
could not guard against forgetting.

**Which document length.** At the chosen alphas, each length the towers may be saved with is scored
on dev, and the longest within the same tolerance of the best is kept (:func:`choose_document_length`):
a longer window drops less of every document, which matters most on collections unlike the dev one.

**How far rankings moved.** Probe queries are the opening words of random documents of the user's
corpus: text from the corpus, but not the kind of question the training pairs ask. For each
combination we report the mean share of each probe's top 10 (over the dev corpus) that the base
towers also rank in their top 10; 1.0 means no change, and a low figure on probes with a high dev
score is the signature of a model that learned the training queries and moved everything else.
"""

from __future__ import annotations

import itertools
import logging
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from dualsearch.errors import InvalidInputError
from dualsearch.finetune.config import FinetuneConfig
from dualsearch.finetune.evaluator import RetrievalEvaluator
from dualsearch.finetune.interpolate import SHARED, State, interpolate, snapshot, towers_of
from dualsearch.finetune.model import set_max_lengths
from dualsearch.towers.weights import DOCUMENT_ROUTE, QUERY_ROUTE

logger = logging.getLogger(__name__)

ALPHA_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
RELATIVE_TOLERANCE = 0.01  # keep alphas scoring at least 99% of the best dev nDCG@10
MOVE_ORDER = (DOCUMENT_ROUTE, SHARED, QUERY_ROUTE)  # whose move away from the base to keep smallest first
LABEL_ORDER = (QUERY_ROUTE, DOCUMENT_ROUTE, SHARED)  # how a combination is written: "query/document"
PROBE_QUERIES = 100
PROBE_WORDS = 8
PRIMARY = "dev_ndcg@10"

Alphas = dict[str, float]  # route -> weight of the tuned tower


@dataclass
class Selection:
    """What was chosen on dev, with every score behind the choice (saved in ``train_report.json``)."""

    alphas: Alphas = field(default_factory=dict)  # a frozen tower is not interpolated and not in here
    grid: list[float] = field(default_factory=list)
    tolerance: float = RELATIVE_TOLERANCE
    key: str = ""  # what the labels of the score tables mean, e.g. "query/document"
    dev_ndcg_by_alphas: dict[str, float] = field(default_factory=dict)
    probe_overlap_by_alphas: dict[str, float] = field(default_factory=dict)  # top-10 shared with the base
    document_length: int | None = None
    dev_ndcg_by_document_length: dict[str, float] = field(default_factory=dict)  # at the chosen alphas
    before: dict[str, float] = field(default_factory=dict)  # base towers, at the chosen document length
    after: dict[str, float] = field(default_factory=dict)  # saved towers


def alphas_label(alphas: Alphas) -> str:
    """How a combination of tower weights is written in reports.

    Example:
        >>> alphas_label({"document": 0.75, "query": 1.0})
        '1.0/0.75'
        >>> alphas_label({"shared": 0.5})
        '0.5'
    """
    return "/".join(str(alphas[route]) for route in _ordered(alphas, LABEL_ORDER))


def alphas_key(routes) -> str:
    """The legend of :func:`alphas_label`.

    Example:
        >>> alphas_key(["document", "query"])
        'query/document'
    """
    return "/".join(_ordered(routes, LABEL_ORDER))


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


def choose_alphas(scores: dict[str, float], cells: dict[str, Alphas], tolerance: float = RELATIVE_TOLERANCE) -> str:
    """The label of the combination, among those scoring at least ``(1 - tolerance)`` times the best,
    that moves the towers least, in :data:`MOVE_ORDER`.

    Example:
        >>> cells = {"0.0": {"shared": 0.0}, "0.5": {"shared": 0.5}, "1.0": {"shared": 1.0}}
        >>> choose_alphas({"0.0": 0.60, "0.5": 0.695, "1.0": 0.70}, cells)
        '0.5'
        >>> cells = {f"{q}/{d}": {"query": q, "document": d} for q in (0.5, 1.0) for d in (0.5, 1.0)}
        >>> choose_alphas({"0.5/0.5": 0.60, "0.5/1.0": 0.699, "1.0/0.5": 0.695, "1.0/1.0": 0.70}, cells)
        '1.0/0.5'
    """
    best = max(scores.values())
    eligible = [label for label, score in scores.items() if score >= (1 - tolerance) * best]
    return min(eligible, key=lambda label: [cells[label][route] for route in _ordered(cells[label], MOVE_ORDER)])


def choose_document_length(scores: dict[int, float], tolerance: float = RELATIVE_TOLERANCE) -> int:
    """The longest document length scoring at least ``(1 - tolerance)`` times the best on dev.

    A longer window drops less of each document, which the dev set may not reward but other text will:
    NFCorpus-trained towers ranked SciFact train queries better at 256 tokens than at 128, where NFCorpus
    dev slightly preferred 128 (``python -m bench finetune_length``, results/finetune_length.json;
    ``docs/finetune-notes.md``).

    Example:
        >>> choose_document_length({128: 0.3288, 256: 0.3266})
        256
        >>> choose_document_length({128: 0.3300, 256: 0.3200})
        128
    """
    best = max(scores.values())
    return max(length for length, score in scores.items() if score >= (1 - tolerance) * best)


def grid_cells(routes: list[str], grid: tuple[float, ...] | list[float]) -> dict[str, Alphas]:
    """Every combination of one weight per trained tower, by label.

    Example:
        >>> list(grid_cells(["query", "document"], [0.0, 1.0]))
        ['0.0/0.0', '0.0/1.0', '1.0/0.0', '1.0/1.0']
    """
    combinations = (dict(zip(routes, weights)) for weights in itertools.product(grid, repeat=len(routes)))
    return {alphas_label(alphas): alphas for alphas in combinations}


def score_grid(model, evaluator: RetrievalEvaluator, snapshots, cells: dict[str, Alphas], frozen: frozenset[str]):
    """Dev metrics and probe rankings of every cell, encoding each tower's setting once.

    Returns {label: (metrics, probe rankings)}; leaves ``model`` at the last cell scored.
    """
    base, tuned = snapshots
    document_side = _encoding_route(cells, DOCUMENT_ROUTE)
    query_side = _encoding_route(cells, QUERY_ROUTE)
    by_document_alpha: dict[float | None, list[str]] = {}
    for label, alphas in cells.items():
        by_document_alpha.setdefault(alphas.get(document_side), []).append(label)
    query_vectors: dict[float | None, Any] = {}
    results = {}
    for labels in by_document_alpha.values():
        interpolate(model, base, tuned, cells[labels[0]], frozen)
        document_vectors = evaluator.encode_documents(model)
        for label in labels:
            query_alpha = cells[label].get(query_side)
            if query_alpha not in query_vectors:
                interpolate(model, base, tuned, cells[label], frozen)
                query_vectors[query_alpha] = evaluator.encode_queries(model)
            results[label] = evaluator.score(query_vectors[query_alpha], document_vectors), evaluator.probe_rankings
    return results


def select(
    model,
    evaluator: RetrievalEvaluator,
    snapshots: tuple[dict[str, State], dict[str, State]],
    base_run: tuple[dict[str, float], list[list[str]]],
    lengths: tuple[int, int, list[int]],
    interpolate_towers: bool = True,
    frozen: frozenset[str] = frozenset(),
) -> Selection:
    """Score the grid at the training length, choose the alphas, then the document length at those
    alphas; leaves ``model`` holding the chosen towers.

    Args:
        snapshots: (base, tuned) weights per tower.
        base_run: the base towers' dev metrics at the training length and their probe rankings.
        lengths: (query length, training document length, document lengths the towers may be saved with).
    """
    base, tuned = snapshots
    before, base_rankings = base_run
    query_length, training_length, candidates = lengths
    routes = [route for route in towers_of(model) if route not in frozen]
    chosen = Selection(grid=list(ALPHA_GRID) if interpolate_towers else [1.0], key=alphas_key(routes))
    cells = grid_cells(routes, chosen.grid)
    untrained = alphas_label(dict.fromkeys(routes, 0.0))
    results = score_grid(model, evaluator, snapshots, {k: v for k, v in cells.items() if k != untrained}, frozen)
    if untrained in cells:
        results[untrained] = before, base_rankings
    for label in cells:
        metrics, rankings = results[label]
        chosen.dev_ndcg_by_alphas[label] = round(metrics[PRIMARY], 6)
        chosen.probe_overlap_by_alphas[label] = ranking_overlap(base_rankings, rankings)
    label = choose_alphas({label: metrics[PRIMARY] for label, (metrics, _) in results.items()}, cells)
    chosen.alphas = cells[label]
    logger.info(
        "interpolation: dev nDCG@10 by alphas (%s) %s; keeping %s", chosen.key, chosen.dev_ndcg_by_alphas, label
    )
    by_length = {training_length: results[label][0]} if training_length in candidates else {}
    for length in candidates:
        if length not in by_length:
            set_max_lengths(model, query_length, length)
            interpolate(model, base, tuned, chosen.alphas, frozen)
            by_length[length] = evaluator(model)
    chosen.dev_ndcg_by_document_length = {str(n): round(m[PRIMARY], 6) for n, m in by_length.items()}
    chosen.document_length = choose_document_length({n: m[PRIMARY] for n, m in by_length.items()})
    chosen.after, chosen.before = by_length[chosen.document_length], before
    set_max_lengths(model, query_length, chosen.document_length)
    if chosen.document_length != training_length:
        interpolate(model, base, tuned, 0.0, frozen)
        chosen.before = evaluator(model)  # the base towers at the length they are compared at
    interpolate(model, base, tuned, chosen.alphas, frozen)
    return chosen


def _encoding_route(cells: dict[str, Alphas], side: str) -> str | None:
    """The trained tower that encodes ``side`` (its own or the shared one), None when it is frozen."""
    routes = next(iter(cells.values())).keys() if cells else ()
    return side if side in routes else (SHARED if SHARED in routes else None)


def _ordered(routes, order: tuple[str, ...]) -> list[str]:
    return sorted(routes, key=lambda route: order.index(route) if route in order else len(order))


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
        routes = [route for route in towers_of(model) if route not in frozen]
        return Selection(dict.fromkeys(routes, 1.0), [1.0], key=alphas_key(routes), document_length=candidates[0])
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
    if not any(selection.alphas.values()):
        return [f"training did not help on dev (nDCG@10 {before:.4f} before): the saved towers are the base towers"]
    if after < before:
        return [f"the saved towers score below the base towers on dev (nDCG@10 {after:.4f} against {before:.4f})"]
    return []
