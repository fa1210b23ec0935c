"""After the towers are chosen, choose on dev how an index of them ranks by default.

The engine's default fusion (hybrid, convex, the towers' weight :data:`~dualsearch.defaults.DENSE_WEIGHT`)
was chosen for the zero-shot towers, which BM25 matches on our collections. Towers tuned on the
user's own data are stronger than BM25 there, and may deserve a larger share of the fusion. So the
saved towers build a real index of the dev corpus (passages, BM25, exact search: what
``dualsearch index`` builds, without IVF's approximation), every candidate in :data:`CANDIDATES` is
scored on the dev queries, and among those within :data:`RELATIVE_TOLERANCE` of the best dev
nDCG@10 the one nearest the engine's default is kept: the default stays unless dev clearly prefers
another. The choice is saved beside the weights (:data:`SEARCH_SETTINGS_NAME`), and
``dualsearch index`` with the model starts from it (:func:`dualsearch.ranking.settings.model_search_settings`).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualsearch.defaults import DENSE_WEIGHT
from dualsearch.ranking.settings import SEARCH_SETTINGS_NAME

logger = logging.getLogger(__name__)

RELATIVE_TOLERANCE = 0.01  # the alphas' and the document length's tolerance, for the same reason
DEPTH = 100  # hits per query, as the engine's evaluation ranks
# Label -> the search settings it stands for: the engine's fusion at several weights, and the towers alone.
CANDIDATES: dict[str, dict[str, Any]] = {
    **{
        f"hybrid-{weight}": {"mode": "hybrid", "fusion": "convex", "dense_weight": weight}
        for weight in (0.3, 0.5, 0.7, 0.9)
    },
    "dense": {"mode": "dense"},
}


@dataclass
class SearchChoice:
    """What was chosen on dev, with every candidate's score (saved in ``train_report.json``)."""

    settings: dict[str, Any] = field(default_factory=dict)  # the SearchSettings fields saved with the model
    label: str = ""
    tolerance: float = RELATIVE_TOLERANCE
    dev_ndcg_by_search: dict[str, float] = field(default_factory=dict)


def distance_from_default(settings: dict[str, Any]) -> float:
    """How far a candidate's share for the towers is from the engine's default fusion (the towers
    alone have all of it).

    Example:
        >>> distance_from_default({"mode": "hybrid", "fusion": "convex", "dense_weight": 0.7})
        0.2
        >>> distance_from_default({"mode": "dense"})
        0.5
    """
    return round(abs(_dense_share(settings) - DENSE_WEIGHT), 6)


def choose_search(scores: dict[str, float], candidates=None, tolerance: float = RELATIVE_TOLERANCE) -> str:
    """The label, among those scoring at least ``(1 - tolerance)`` times the best, nearest the default
    (the towers' larger share first on a tie: the towers were tuned for this data, BM25 was not).

    Example:
        >>> choose_search({"hybrid-0.5": 0.700, "hybrid-0.7": 0.720, "dense": 0.715})
        'hybrid-0.7'
        >>> choose_search({"hybrid-0.5": 0.715, "hybrid-0.7": 0.720, "dense": 0.716})
        'hybrid-0.5'
    """
    candidates = candidates or CANDIDATES
    best = max(scores.values())
    eligible = [label for label, score in scores.items() if score >= (1 - tolerance) * best]
    return min(eligible, key=lambda label: (distance_from_default(candidates[label]), -_dense_share(candidates[label])))


def _dense_share(settings: dict[str, Any]) -> float:
    """The towers' share of a candidate's score (every candidate is a convex fusion or the towers alone)."""
    return 1.0 if settings["mode"] == "dense" else settings["dense_weight"]


def choose_search_settings(model, dev, document_ids: list[str], model_name: str) -> SearchChoice:
    """Index the dev corpus (``document_ids`` of ``dev``'s documents, titles kept apart so every passage
    starts with its document's title, as in an index of the corpus) with ``model``'s towers, score every
    candidate on the dev queries, and choose (see the module's docstring). Encodes in float32, as an
    index does."""
    from dualsearch.corpora.document import Document
    from dualsearch.index.config import IndexConfig
    from dualsearch.read.evaluation import score_run
    from dualsearch.read.searcher import Searcher
    from dualsearch.towers.dual_encoder import DualEncoder
    from dualsearch.write.build import build_index

    encoder = DualEncoder(model, model_name=model_name)
    query_ids = sorted(q for q in dev.qrels if q in dev.queries)
    texts = [dev.queries[q] for q in query_ids]
    qrels = {q: dev.qrels[q] for q in query_ids}
    scores: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="dualsearch-dev-index-") as work:
        index_dir = Path(work) / "index"
        corpus = (Document(d, dev.titles.get(d, ""), dev.body(d)) for d in document_ids if dev.body(d).strip())
        build_index(corpus, index_dir, encoder, IndexConfig(factory="Flat"), corpus_name="dev corpus")
        with Searcher.open(index_dir, encoder=encoder) as searcher:
            for label, settings in CANDIDATES.items():
                hits = searcher.search_batch(texts, k=DEPTH, **settings)
                run = {q: {hit.doc_id: hit.score for hit in found} for q, found in zip(query_ids, hits)}
                scores[label] = round(score_run(qrels, run)["ndcg@10"], 6)
    label = choose_search(scores)
    logger.info("search on dev: nDCG@10 by setting %s; keeping %s", scores, label)
    return SearchChoice(dict(CANDIDATES[label]), label, RELATIVE_TOLERANCE, scores)


def save_search_settings(choice: SearchChoice, model_dir: Path) -> None:
    """Write the chosen settings beside the weights, where ``dualsearch index`` looks for them."""
    payload = {"settings": choice.settings, "chosen_on": "dev", "label": choice.label}
    (Path(model_dir) / SEARCH_SETTINGS_NAME).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
