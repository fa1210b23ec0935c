"""BM25 over segments with deletions against today's bm25s index, on SciFact and NFCorpus test.

    python -m bench.lexical_segments [--data ../shared/data] [--collections scifact nfcorpus]
                                     [--segments 8] [--rewrite-fraction 0.1] [--latency-queries 300]

Per collection, three lexical indexes of the same documents (title + text, as the engine indexes
them):
  bm25s        today's engine (dualsearch.index.lexical)
  one-segment  dualsearch.index.lexical_segments, every document in one segment
  history      the same documents written as --segments segments in shuffled order, with
               --rewrite-fraction of them deleted from their segment and written again in a last one
and for each: nDCG@10 / Recall@100 of the test queries (lexical search, the top 100 scores), the
largest difference of any document's score from bm25s's over every test query, build seconds, and
single-query latency p50/p95 (one query at a time, measured in rounds that alternate the engines).
No towers are loaded: the dense side of hybrid search is unchanged by the lexical engine.

Writes results/lexical_segments.json.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from pathlib import Path

import numpy as np

from bench.common import DEFAULT_DATA, percentile_ms, write_result

logger = logging.getLogger(__name__)
TOP = 100


def build_engines(texts: list[str], segments: int, rewrite_fraction: float, seed: int = 0):
    """The three engines over ``texts`` and their build seconds; each scores rows of ``texts`` order."""
    from dualsearch.index.lexical import LexicalIndex
    from dualsearch.index.lexical_segments import LexicalSegment, SegmentedBM25

    started = time.perf_counter()
    bm25s_index = LexicalIndex.build(texts)
    seconds = {"bm25s": time.perf_counter() - started}
    started = time.perf_counter()
    one_segment = SegmentedBM25([LexicalSegment.build(texts)])
    seconds["one-segment"] = time.perf_counter() - started

    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    parts = [order[start::segments] for start in range(segments)]
    rewritten = set(random.Random(seed + 1).sample(order, int(rewrite_fraction * len(order))))
    parts.append(sorted(rewritten))
    started = time.perf_counter()
    built = [LexicalSegment.build([texts[row] for row in part]) for part in parts]
    live = [np.array([row not in rewritten for row in part]) for part in parts[:-1]] + [None]
    history = SegmentedBM25(built, live)
    seconds["history"] = time.perf_counter() - started
    # history's rows -> text rows, for its live rows only
    rows = np.concatenate([np.asarray(part, np.int64) for part in parts])
    alive = np.concatenate(
        [mask if mask is not None else np.ones(len(part), bool) for mask, part in zip(live, parts, strict=True)]
    )

    def history_scores(query: str) -> np.ndarray:
        scores = np.zeros(len(texts), np.float32)
        scores[rows[alive]] = history.scores(query)[alive]
        return scores

    engines = {"bm25s": bm25s_index.scores, "one-segment": one_segment.scores, "history": history_scores}
    return engines, seconds, {"segments": len(parts), "rewritten": len(rewritten)}


def top_hits(scores: np.ndarray, doc_ids: list[str]) -> dict[str, float]:
    top = np.argpartition(-scores, min(TOP, len(scores) - 1))[:TOP]
    return {doc_ids[row]: float(scores[row]) for row in top if scores[row] > 0}


def measure(collection_dir: Path, segments: int, rewrite_fraction: float, latency_queries: int) -> dict:
    from dualsearch.corpora import beir
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.read.evaluation import score_run

    documents = list(read_corpus(str(collection_dir)))
    doc_ids, texts = [d.id for d in documents], [d.encoding_text() for d in documents]
    queries = beir.read_queries(collection_dir)
    qrels = beir.read_qrels(collection_dir, "test")
    test = {query_id: queries[query_id] for query_id in qrels if query_id in queries}
    engines, build_seconds, shape = build_engines(texts, segments, rewrite_fraction)

    runs = {name: {} for name in engines}
    largest_difference = {name: 0.0 for name in engines}
    for query_id, text in test.items():
        reference = engines["bm25s"](text)
        for name, scores_of in engines.items():
            scores = reference if name == "bm25s" else scores_of(text)
            largest_difference[name] = max(largest_difference[name], float(np.abs(scores - reference).max()))
            runs[name][query_id] = top_hits(scores, doc_ids)

    latencies = {name: [] for name in engines}
    timed_queries = list(test.values())[:latency_queries]
    for text in timed_queries:  # engines alternate query by query: load on the machine hits them alike
        for name, scores_of in engines.items():
            started = time.perf_counter()
            top_hits(scores_of(text), doc_ids)
            latencies[name].append(time.perf_counter() - started)

    return {
        "documents": len(texts),
        "test_queries": len(test),
        **shape,
        "engines": {
            name: {
                **{metric: round(value, 4) for metric, value in score_run(qrels, runs[name]).items()},
                "largest_score_difference_from_bm25s": largest_difference[name],
                "build_seconds": round(build_seconds[name], 2),
                "latency_ms_p50": round(percentile_ms(latencies[name], 50), 2),
                "latency_ms_p95": round(percentile_ms(latencies[name], 95), 2),
            }
            for name in engines
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lexical_segments", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the BEIR collections")
    parser.add_argument("--collections", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--segments", type=int, default=8, help="segments the history engine is written as")
    parser.add_argument("--rewrite-fraction", type=float, default=0.1, help="share of documents deleted and re-added")
    parser.add_argument("--latency-queries", type=int, default=300)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    collections = {}
    for name in args.collections:
        logger.info("%s ...", name)
        collections[name] = measure(args.data / name, args.segments, args.rewrite_fraction, args.latency_queries)
        logger.info("%s: %s", name, {engine: r["ndcg@10"] for engine, r in collections[name]["engines"].items()})
    path = write_result(
        "lexical_segments",
        {
            "split": "test",
            "segments": args.segments,
            "rewrite_fraction": args.rewrite_fraction,
            "collections": collections,
        },
    )
    logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
