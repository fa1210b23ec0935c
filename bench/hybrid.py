"""Search quality on whole documents: truncated against passages, BM25, and hybrid, with their costs.

    python -m bench.hybrid [--data ../shared/data] [--work /tmp/dualsearch-bench-hybrid] [--model default]
                           [--label zero-shot] [--collections scifact nfcorpus] [--latency-queries 200]

Per collection, three indexes of the same towers:
  truncated      one passage a document, cut at the tower's window (the engine before passages)
  passages-half  passages every half window (each token in two passages)
  passages-full  passages every whole window (no overlap)
and per index the searches: dense (towers, MaxP), lexical (BM25), hybrid with reciprocal-rank
fusion, hybrid with a convex combination (towers' weight 0.3, 0.5, 0.7).

Settings are chosen on dev queries only (SciFact: its train split, which has no other use here;
NFCorpus: dev): the passage variant and the search with the best dev nDCG@10 averaged over the
collections. Then the test split is scored once, for: today's engine (truncated, dense), passages
(dense), lexical, hybrid on truncated documents, and the chosen default (hybrid + passages). Costs
per index and mode: bytes on disk, build seconds, single-query latency p50/p95 (one query at a time,
test queries), each also as a ratio to today's engine measured in the same run.

With ``--fixed`` nothing is chosen: what a user gets is scored as it is, and only the two indexes
it needs are built: the engine's shipped defaults (``dualsearch.defaults``), with the search
settings a fine-tuned model directory recommends (``dualsearch finetune`` chose them on its own dev
set; ``dualsearch.ranking.settings.model_search_settings``). This is how fine-tuned towers are
measured: SciFact's dev split here is its train split, which fine-tuned towers were trained on, so a
choice made on it would favour them. ``--model`` takes one model for every collection or
``COLLECTION=MODEL`` pairs (each collection's own fine-tuned towers):

    python -m bench.hybrid --fixed --label finetuned --model scifact=MODEL_A nfcorpus=MODEL_B

Writes results/hybrid[-LABEL].json; the report (python -m bench report) renders it.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import time
from pathlib import Path

from bench.common import DEFAULT_DATA, percentile_ms, timed, write_result

logger = logging.getLogger(__name__)
COLLECTIONS = {"scifact": "train", "nfcorpus": "dev"}  # collection -> the split settings are chosen on
INDEXES = {
    "truncated": {"max_passages": 1},
    "passages-half": {"passage_stride_fraction": 0.5},
    "passages-full": {"passage_stride_fraction": 1.0},
}
SEARCHES = {
    "dense": {"mode": "dense"},
    "lexical": {"mode": "lexical"},
    "hybrid-rrf": {"mode": "hybrid", "fusion": "rrf"},
    "hybrid-convex-0.3": {"mode": "hybrid", "fusion": "convex", "dense_weight": 0.3},
    "hybrid-convex-0.5": {"mode": "hybrid", "fusion": "convex", "dense_weight": 0.5},
    "hybrid-convex-0.7": {"mode": "hybrid", "fusion": "convex", "dense_weight": 0.7},
}


def index_config(variant: str, encoder):
    from dualsearch.index.config import IndexConfig

    settings = INDEXES[variant]
    if "max_passages" in settings:
        return IndexConfig(max_passages=settings["max_passages"])
    window = encoder.document_window
    return IndexConfig(passage_stride=max(1, round(window * settings["passage_stride_fraction"])))


def build(collection: Path, index_dir: Path, variant: str, encoder, rebuild: bool) -> dict:
    """Build (or reuse) one index; returns its size and build time. ``rebuild`` starts from an empty
    directory: a build over a live version would reuse its vectors and time a copy, not a build."""
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.index.layout import current_version_dir, is_index_dir
    from dualsearch.index.manifest import Manifest
    from dualsearch.write.build import build_index

    seconds = None
    if rebuild:
        shutil.rmtree(index_dir, ignore_errors=True)
    if not is_index_dir(index_dir):
        config = index_config(variant, encoder)
        _, seconds = timed(
            lambda: build_index(
                read_corpus(collection), index_dir, encoder, config, corpus_name=str(collection), show_progress=True
            )
        )
    version = current_version_dir(index_dir)
    manifest = Manifest.read(version)
    return {
        "passages": manifest.passage_count,
        "documents": manifest.document_count,
        "bytes": sum(path.stat().st_size for path in version.rglob("*") if path.is_file()),
        "build_seconds": round(seconds, 1) if seconds else manifest.build.get("encode_seconds"),
        "passage_settings": manifest.passages,
    }


def dev_and_test(searcher, collection: Path, dev_split: str) -> dict:
    """nDCG@10 etc. of every search on the dev split (test is scored later, once, for the chosen few)."""
    from dualsearch.read.evaluation import evaluate

    return {
        name: {k: round(v, 4) for k, v in evaluate(searcher, collection, dev_split, **search).items()}
        for name, search in SEARCHES.items()
    }


def latency(searcher, queries: list[str], search: dict) -> dict:
    """Single-query latency (ms), one query at a time after a warm-up."""
    searcher.search(queries[0], **search)
    seconds = [timed(lambda: searcher.search(query, k=10, **search))[1] for query in queries]
    return {"p50": round(percentile_ms(seconds, 50), 2), "p95": round(percentile_ms(seconds, 95), 2)}


def choose(dev: dict) -> tuple[str, str]:
    """(index variant, search) with the best dev nDCG@10 averaged over collections."""
    scores = {}
    for variant in INDEXES:
        for search in SEARCHES:
            scores[(variant, search)] = statistics.mean(dev[c][variant][search]["ndcg@10"] for c in dev)
    return max(scores, key=scores.get)


def shipped_defaults(model: str = "default") -> tuple[str, str]:
    """(index variant, search) that ``dualsearch index --model MODEL`` + ``dualsearch search`` use with
    no other flags: the engine's defaults, with the search settings ``model``'s directory recommends.
    A search not in :data:`SEARCHES` is added to it under its own name."""
    from dualsearch import defaults
    from dualsearch.ranking.settings import SearchSettings, model_search_settings

    stride = defaults.PASSAGE_STRIDE_FRACTION
    variant = next(name for name, s in INDEXES.items() if s.get("passage_stride_fraction") == stride)
    settings = SearchSettings.from_dict(model_search_settings(model))
    wanted = {"mode": settings.mode}
    if settings.mode == "hybrid":
        wanted["fusion"] = settings.fusion
        if settings.fusion == "convex":
            wanted["dense_weight"] = settings.dense_weight
    search = next((name for name, s in SEARCHES.items() if s == wanted), None)
    if search is None:
        search = "-".join(str(value) for value in wanted.values())
        SEARCHES[search] = wanted
    return variant, search


def models_by_collection(values: list[str], collections: list[str]) -> dict[str, str]:
    """``["default"]`` -> that model for every collection; ``["scifact=A", "nfcorpus=B"]`` -> one each.

    Example:
        >>> models_by_collection(["scifact=/m/a", "nfcorpus=/m/b"], ["scifact", "nfcorpus"])
        {'scifact': '/m/a', 'nfcorpus': '/m/b'}
    """
    if len(values) == 1 and "=" not in values[0]:
        return dict.fromkeys(collections, values[0])
    pairs = dict(value.split("=", 1) for value in values)
    missing = sorted(set(collections) - set(pairs))
    if missing:
        raise SystemExit(f"--model: no model for {missing}")
    return {collection: pairs[collection] for collection in collections}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hybrid", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/dualsearch-bench-hybrid"))
    parser.add_argument(
        "--model", nargs="+", default=["default"], help="towers (default: zero-shot MiniLM), or COLLECTION=MODEL pairs"
    )
    parser.add_argument("--fixed", action="store_true", help="score the shipped defaults; choose nothing on dev")
    parser.add_argument("--label", default="", help="suffix of the results file, e.g. finetuned")
    parser.add_argument("--collections", nargs="+", default=list(COLLECTIONS), choices=list(COLLECTIONS))
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from dualsearch.corpora.beir import read_qrels, read_queries
    from dualsearch.read.evaluation import evaluate
    from dualsearch.read.searcher import Searcher
    from dualsearch.towers.dual_encoder import DualEncoder

    started = time.perf_counter()
    models = models_by_collection(args.model, args.collections)
    encoders = {model: DualEncoder.load(model) for model in dict.fromkeys(models.values())}
    work = args.work / (args.label or "zero-shot")
    defaults = {name: shipped_defaults(models[name]) for name in args.collections}  # per collection's model
    variants = list(dict.fromkeys(["truncated", *(v for v, _ in defaults.values())])) if args.fixed else list(INDEXES)
    builds, dev = {}, {}
    for name in args.collections:
        builds[name], dev[name] = {}, {}
        encoder = encoders[models[name]]
        for variant in variants:
            index_dir = work / f"{name}-{variant}"
            builds[name][variant] = build(args.data / name, index_dir, variant, encoder, args.rebuild)
            if args.fixed:
                continue
            with Searcher.open(index_dir, encoder=encoder) as searcher:
                dev[name][variant] = dev_and_test(searcher, args.data / name, COLLECTIONS[name])
            logger.info("%s %s dev: %s", name, variant, {s: m["ndcg@10"] for s, m in dev[name][variant].items()})
    chosen = defaults if args.fixed else dict.fromkeys(args.collections, choose(dev))
    logger.info("%s: %s", "shipped defaults" if args.fixed else "chosen on dev", chosen)
    test, costs = {}, {}
    for name in args.collections:
        chosen_index, chosen_search = chosen[name]
        systems = {  # what the test split is scored for, once
            "today: truncated, dense": ("truncated", "dense"),
            "passages, dense": (chosen_index if chosen_index != "truncated" else "passages-half", "dense"),
            "lexical (BM25)": ("truncated", "lexical"),
            f"hybrid ({chosen_search}), truncated": ("truncated", chosen_search),
            f"chosen default: {chosen_index} + {chosen_search}": (chosen_index, chosen_search),
        }
        test[name], costs[name] = {}, {}
        encoder = encoders[models[name]]
        queries = read_queries(args.data / name)
        test_queries = [queries[q] for q in sorted(read_qrels(args.data / name, "test"))][: args.latency_queries]
        for system, (variant, search) in systems.items():
            with Searcher.open(work / f"{name}-{variant}", encoder=encoder) as searcher:
                metrics = evaluate(searcher, args.data / name, "test", **SEARCHES[search])
                test[name][system] = {k: round(v, 4) for k, v in metrics.items()}
                costs[name][system] = {
                    "latency_ms": latency(searcher, test_queries, SEARCHES[search]),
                    "index_bytes": builds[name][variant]["bytes"],
                    "build_seconds": builds[name][variant]["build_seconds"],
                }
        baseline = costs[name]["today: truncated, dense"]
        for row in costs[name].values():
            row["latency_p50_ratio"] = round(row["latency_ms"]["p50"] / baseline["latency_ms"]["p50"], 2)
            row["index_bytes_ratio"] = round(row["index_bytes"] / baseline["index_bytes"], 2)
            if row["build_seconds"] and baseline["build_seconds"]:
                row["build_seconds_ratio"] = round(row["build_seconds"] / baseline["build_seconds"], 2)
    payload = {
        "model": models[args.collections[0]] if len(set(models.values())) == 1 else models,
        "fixed": args.fixed,
        "dev_splits": {c: COLLECTIONS[c] for c in args.collections},
        "indexes": builds,
        "dev": dev,
        "chosen": {
            name: {"index": index, "search": search, "settings": {**INDEXES[index], **SEARCHES[search]}}
            for name, (index, search) in chosen.items()
        },
        "test": test,
        "costs": costs,
        "wall_seconds": round(time.perf_counter() - started),
    }
    path = write_result("hybrid" + (f"-{args.label}" if args.label else ""), payload)
    for name in args.collections:
        for system, metrics in test[name].items():
            print(
                f"{name:9} {system:48} nDCG@10 {metrics['ndcg@10']:.4f}  "
                f"p50 x{costs[name][system]['latency_p50_ratio']}"
            )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
