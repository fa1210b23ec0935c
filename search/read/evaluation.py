"""IR metrics of a searcher on BEIR queries and judgements, computed by ir-measures (pytrec_eval),
the same implementation BEIR and MTEB report with."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from dualsearch.corpora import beir
from dualsearch.errors import CorpusError

logger = logging.getLogger(__name__)

# Our names -> ir-measures measures. RR@10 is MRR@10 once averaged over queries.
METRICS = {"ndcg@10": "nDCG@10", "recall@100": "R@100", "mrr@10": "RR@10"}
RUN_DEPTH = 100  # Recall@100 needs 100 hits per query
SEARCH_BATCH = 256  # queries encoded and searched per step of the progress bar


def score_run(qrels: beir.Qrels, run: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean metrics of a run ({query id: {doc id: score}}) against judgements.

    Queries without hits count as zero, not as absent (pytrec_eval alone would skip them).

    Example:
        >>> score_run({"q": {"d1": 1}}, {"q": {"d1": 0.9, "d2": 0.5}})["ndcg@10"]
        1.0
    """
    import ir_measures

    measures = [ir_measures.parse_measure(name) for name in METRICS.values()]
    per_query = {name: {query_id: 0.0 for query_id in qrels} for name in METRICS}
    by_measure = {str(measure): ours for ours, measure in zip(METRICS, measures)}
    for metric in ir_measures.iter_calc(measures, qrels, {q: hits for q, hits in run.items() if hits}):
        if metric.query_id in qrels:
            per_query[by_measure[str(metric.measure)]][metric.query_id] = float(metric.value)
    return {name: sum(values.values()) / len(values) for name, values in per_query.items()}


def evaluate(searcher, beir_dir: str | Path, split: str = "test", **options) -> dict[str, float]:
    """nDCG@10, Recall@100 and MRR@10 of ``searcher`` on the judged queries of one split.

    ``options`` are :func:`evaluation_run`'s: ``nprobe``, ``exact``, ``show_progress``, ``mode``,
    ``ignore_identical_ids`` and search overrides.
    """
    return score_run(*evaluation_run(searcher, beir_dir, split, **options))


def evaluation_run(
    searcher,
    beir_dir: str | Path,
    split: str = "test",
    nprobe: int | None = None,
    exact: bool = False,
    show_progress: bool = False,
    mode: str | None = None,
    ignore_identical_ids: bool = False,
    **overrides,
) -> tuple[beir.Qrels, dict[str, dict[str, float]]]:
    """What :func:`evaluate` scores: the split's judgements (queries with a positive one) and the run,
    {query id: {document id: score}}, so a caller can score a subset of the queries too.

    Query metadata is never read (SciFact's holds the answers). ``mode`` and ``overrides`` are
    passed to the search (default: the index's settings). ``ignore_identical_ids`` drops a result
    whose id is the query's, the BEIR/MTEB convention for collections whose queries are also
    documents (ArguAna, Quora).
    """
    qrels = {q: judged for q, judged in beir.read_qrels(beir_dir, split).items() if any(v > 0 for v in judged.values())}
    queries = beir.read_queries(beir_dir)
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise CorpusError(
            f"{beir_dir}: {len(missing)} judged queries of split {split!r} are not in queries.jsonl, e.g. {missing[:3]}"
        )
    check_judged_documents_indexed(searcher, qrels, beir_dir)
    query_ids = sorted(qrels)
    started = time.perf_counter()
    depth = RUN_DEPTH + (1 if ignore_identical_ids else 0)
    search = partial(searcher.search_batch, k=depth, nprobe=nprobe, exact=exact, mode=mode, **overrides)
    results = _search_all([queries[q] for q in query_ids], search, show_progress)
    run = {
        q: {r.doc_id: r.score for r in hits if not (ignore_identical_ids and r.doc_id == q)}
        for q, hits in zip(query_ids, results)
    }
    logger.info("searched %d queries in %.1fs", len(query_ids), time.perf_counter() - started)
    return qrels, run


def check_judged_documents_indexed(searcher, qrels: beir.Qrels, beir_dir: str | Path) -> None:
    """Refuse judgements none of whose documents the index holds (every metric would be 0.0: they
    belong to another collection), and warn when some are missing."""
    judged = {doc_id for judged in qrels.values() for doc_id, relevance in judged.items() if relevance > 0}
    found = len(searcher.store.lookup(judged))
    if found == 0:
        raise CorpusError(
            f"none of the {len(judged)} relevant documents judged in {beir_dir} is in the index "
            f"{searcher.index_dir}: are these judgements of another collection?"
        )
    if found < len(judged):
        logger.warning(
            "%d of the %d relevant documents judged in %s are not in the index: metrics count them as never found",
            len(judged) - found,
            len(judged),
            beir_dir,
        )


def _search_all(texts: list[str], search: Callable[[list[str]], list], show_progress: bool) -> list:
    """Search the queries in batches under one progress bar of ours (sentence-transformers' own
    "Batches" bar, one per call, would print over it)."""
    from tqdm.auto import tqdm

    results = []
    with tqdm(total=len(texts), disable=not show_progress, unit="query", desc="searching", dynamic_ncols=True) as bar:
        for start in range(0, len(texts), SEARCH_BATCH):
            batch = texts[start : start + SEARCH_BATCH]
            results += search(batch)
            bar.update(len(batch))
    return results
