"""How the default index ranks, chosen on dev questions: the fusion weight and the usage prior's weight.

    python -m bench.stdlib_dev [--queries bench/data/stdlib_dev_queries.jsonl]

The dev questions (bench/data/stdlib_dev_queries.jsonl) were written for this choice, apart from the
judged set that bench/stdlib_search.py reports, and not one of them repeats a judged question.
Every setting of the grid (dense search, and hybrid at several towers' weights, each with several
prior weights) searches every dev question on the default index; MRR@10 picks the winner, and
among settings within 0.005 of it the one with the smallest prior weight, then the weight closest
to the engine's default fusion (the least departure from what every other index does). The choice
is copied by hand into dualsearch.defaults (STDLIB_DENSE_WEIGHT, STDLIB_PRIOR_WEIGHT); this script
only reports it. Writes results/stdlib_dev.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from bench.common import REPO, timed, write_result
from bench.stdlib_search import qrels_of, read_queries, score

DEV_QUERIES = REPO / "bench" / "data" / "stdlib_dev_queries.jsonl"
DENSE_WEIGHTS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
PRIOR_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7)
TOLERANCE = 0.005  # MRR@10 on 80 questions moves by 1/80 when one answer goes from rank 1 to 2


def settings_grid() -> list[dict]:
    """Every setting tried: dense with each prior weight, hybrid with each fusion and prior weight.

    Example:
        >>> grid = settings_grid()
        >>> len(grid), grid[0]
        (63, {'mode': 'dense', 'prior_weight': 0.0})
    """
    dense = [{"mode": "dense", "prior_weight": prior} for prior in PRIOR_WEIGHTS]
    hybrid = [
        {"mode": "hybrid", "fusion": "convex", "dense_weight": weight, "prior_weight": prior}
        for weight in DENSE_WEIGHTS
        for prior in PRIOR_WEIGHTS
    ]
    return dense + hybrid


def choose(scored: list[tuple[dict, dict]], default_dense_weight: float) -> dict:
    """The setting with the best MRR@10, preferring (within :data:`TOLERANCE`) a smaller prior
    weight, then a fusion weight closer to the default.

    Example:
        >>> choose([({"prior_weight": 0.2, "dense_weight": 0.5}, {"mrr@10": 0.60}),
        ...         ({"prior_weight": 0.1, "dense_weight": 0.9}, {"mrr@10": 0.598}),
        ...         ({"prior_weight": 0.1, "dense_weight": 0.6}, {"mrr@10": 0.597})], 0.5)
        {'prior_weight': 0.1, 'dense_weight': 0.6}
    """
    best = max(metrics["mrr@10"] for _, metrics in scored)
    close = [setting for setting, metrics in scored if metrics["mrr@10"] >= best - TOLERANCE]
    return min(
        close,
        key=lambda s: (s["prior_weight"], abs(s.get("dense_weight", default_dense_weight) - default_dense_weight)),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=Path, default=DEV_QUERIES, help="JSON lines: query, answers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from dualsearch.default_index import resolve_index_dir
    from dualsearch.defaults import DENSE_WEIGHT
    from dualsearch.searcher import Searcher

    queries = read_queries(args.queries)
    qrels, texts = qrels_of(queries), [row["query"] for row in queries.values()]
    index_dir, build_seconds = timed(lambda: resolve_index_dir("default", show_progress=True))
    searcher = Searcher.open(index_dir)
    scored = []
    for setting in settings_grid():
        results = searcher.search_batch(texts, k=10, **setting)
        metrics = score(
            qrels, {query_id: {r.doc_id: r.score for r in hits} for query_id, hits in zip(queries, results)}
        )
        scored.append((setting, metrics))
        print(f"{setting}: MRR@10 {metrics['mrr@10']:.4f}, success@5 {metrics['success@5']:.4f}")
    chosen = choose(scored, DENSE_WEIGHT)
    chosen_metrics = next(metrics for setting, metrics in scored if setting == chosen)
    result = {
        "index": str(index_dir),
        "documents": len(searcher),
        "queries": len(queries),
        "index_settings": dataclasses.asdict(searcher.settings),
        "grid": [{"setting": setting, "metrics": metrics} for setting, metrics in scored],
        "chosen": {"setting": chosen, "metrics": chosen_metrics, "tolerance": TOLERANCE},
        "seconds": {"index_ready": round(build_seconds, 1)},
    }
    print(f"chosen: {chosen} (MRR@10 {chosen_metrics['mrr@10']:.4f})")
    print(f"wrote {write_result('stdlib_dev', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
