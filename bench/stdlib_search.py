"""Everyday Python questions against the default index: does the built-in corpus answer them?

    python -m bench.stdlib_search [--queries bench/data/stdlib_queries.jsonl] [--index default] [--mode MODE]

The queries (bench/data/stdlib_queries.jsonl) are questions in plain user language, written once
with the documents that answer them (``answers``: document ids such as ``function:random.choice``),
not tuned to the extraction. Builds the default index on first use (the towers encode the
corpus), searches every query in the index's default mode, and prints MRR@10 and success@5
(ir-measures' RR@10 and Success@5; a query without hits scores 0). Accepted answers that are no
document of the default corpus are listed, not dropped. Also ranks issue #39's six example questions
(:data:`bench.stdlib_towers.EXAMPLES`, never tuned on) as the default index answers them. Writes
results/stdlib_search.json.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from bench.common import REPO, timed, write_result

logger = logging.getLogger(__name__)
QUERIES = REPO / "bench" / "data" / "stdlib_queries.jsonl"
MEASURES = {"mrr@10": "RR@10", "success@5": "Success@5"}


def read_queries(path: Path) -> dict[str, dict]:
    """``{query id: {"query": text, "answers": [document ids]}}`` from a JSON-lines file; ids are
    ``q1``, ``q2`` ... in file order.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "q.jsonl"
        >>> _ = path.write_text('{"query": "pick a random element", "answers": ["function:random.choice"]}\\n')
        >>> read_queries(path)
        {'q1': {'query': 'pick a random element', 'answers': ['function:random.choice']}}
    """
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        if not row.get("query") or not row.get("answers"):
            raise ValueError(f"{path}: every line needs a query and at least one answer: {row}")
    return {f"q{number}": {"query": row["query"], "answers": row["answers"]} for number, row in enumerate(rows, 1)}


def qrels_of(queries: dict[str, dict]) -> dict[str, dict[str, int]]:
    """Judgements in the ir-measures dict form: every accepted answer is relevant (1).

    Example:
        >>> qrels_of({"q1": {"query": "x", "answers": ["a", "b"]}})
        {'q1': {'a': 1, 'b': 1}}
    """
    return {query_id: dict.fromkeys(row["answers"], 1) for query_id, row in queries.items()}


def score(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean MRR@10 and success@5 over every judged query (one without hits counts 0).

    Example:
        >>> qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
        >>> score(qrels, {"q1": {"x": 0.9, "a": 0.8}, "q2": {}})
        {'mrr@10': 0.25, 'success@5': 0.5}
    """
    import ir_measures

    measures = {ours: ir_measures.parse_measure(name) for ours, name in MEASURES.items()}
    per_query = {ours: dict.fromkeys(qrels, 0.0) for ours in MEASURES}
    ours_of = {str(measure): ours for ours, measure in measures.items()}
    for metric in ir_measures.iter_calc(list(measures.values()), qrels, {q: h for q, h in run.items() if h}):
        per_query[ours_of[str(metric.measure)]][metric.query_id] = float(metric.value)
    return {ours: round(sum(values.values()) / len(values), 4) for ours, values in per_query.items()}


def first_answer_rank(ranked_ids: list[str], answers: list[str]) -> int | None:
    """1-based rank of the first accepted answer among the results, or None.

    Example:
        >>> first_answer_rank(["class:str", "function:len"], ["function:len"]), first_answer_rank([], ["a"])
        (2, None)
    """
    return next((rank for rank, doc_id in enumerate(ranked_ids, 1) if doc_id in answers), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=Path, default=QUERIES, help="JSON lines: query, answers")
    parser.add_argument("--index", default="default", help="index directory (default: the default index)")
    parser.add_argument("--mode", default=None, help="hybrid, dense or lexical (default: the index's own)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from dualsearch.profiles.stdlib import resolve_index_dir
    from dualsearch.read.searcher import Searcher

    queries = read_queries(args.queries)
    index_dir, build_seconds = timed(lambda: resolve_index_dir(args.index, show_progress=True))
    searcher = Searcher.open(index_dir)
    texts = [row["query"] for row in queries.values()]
    results, search_seconds = timed(lambda: searcher.search_batch(texts, k=10, mode=args.mode))
    run = {query_id: {r.doc_id: r.score for r in hits} for query_id, hits in zip(queries, results)}
    metrics = score(qrels_of(queries), run)
    per_query = [
        {
            "query": row["query"],
            "answers": row["answers"],
            "first_answer_rank": first_answer_rank([r.doc_id for r in hits], row["answers"]),
            "top3": [r.doc_id for r in hits[:3]],
        }
        for row, hits in zip(queries.values(), results)
    ]
    result = {
        "index": str(index_dir),
        "documents": len(searcher),
        "document_backend": searcher.manifest.document_backend,
        "query_encoder": type(searcher.encoder).__name__,
        "mode": args.mode or searcher.settings.mode,
        "queries": len(queries),
        "metrics": metrics,
        "answers_not_in_corpus": _missing_answers(queries),
        "seconds": {"index_ready": round(build_seconds, 1), "search": round(search_seconds, 2)},
        "per_query": per_query,
    }
    searcher.close()
    if args.queries == QUERIES and args.mode is None:  # as the default index answers, not another mode
        from bench.stdlib_towers import examples

        result["examples"] = examples(index_dir)
        in_top3 = sum(1 for row in result["examples"].values() if (row["first_answer_rank"] or 99) <= 3)
        print(f"issue #39's examples with a right answer in the top 3: {in_top3} of {len(result['examples'])}")
    print(
        f"{len(queries)} queries, {result['mode']} search over {result['documents']:,} documents: "
        f"MRR@10 {metrics['mrr@10']:.4f}, success@5 {metrics['success@5']:.4f}"
    )
    print(f"wrote {write_result('stdlib_search', result)}")
    return 0


def _missing_answers(queries: dict[str, dict]) -> list[str]:
    """Accepted answers that are no document of this interpreter's default corpus (a coverage gap)."""
    from dualsearch.corpora.sources import read_corpus

    documented = {document.id for document in read_corpus("default")}
    return sorted({answer for row in queries.values() for answer in row["answers"]} - documented)


if __name__ == "__main__":
    raise SystemExit(main())
