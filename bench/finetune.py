"""Fine-tuned towers against BM25 and zero-shot towers on SciFact and NFCorpus, scored once on test.

    python -m bench finetune [--data ../shared/data] [--collections scifact nfcorpus]

For each collection: BM25 (bm25s) and the zero-shot all-MiniLM-L6-v2 towers, then towers fine-tuned
from them (separate, tied, separate with BM25 hard negatives). Choices are made on held-out training
queries (SciFact, which has no dev split) or on the dev split (NFCorpus): the trainer keeps the
checkpoint with the best dev nDCG@10. Test is scored once per model, through the engine: a Flat
index (exact search) built by ``dualsearch.write.build.build_index`` and ``dualsearch.read.evaluation.evaluate``.
The separate towers trained on one collection are also scored zero-shot on the other.

Writes results/finetune.json (after every run, so ``--resume`` can continue an interrupted
benchmark) and the table docs/finetune.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from bench.common import DEFAULT_DATA, REPO, log_phases_only

logger = logging.getLogger("bench.finetune")

# Settings shared by every fine-tuning run unless a collection overrides them (chosen on dev, never on
# test; see docs/finetune-notes.md).
COMMON = dict(
    epochs=3,
    batch_size=32,
    learning_rate=5e-5,
    warmup_ratio=0.1,
    scale=20.0,
    max_query_length=64,
    max_document_length=256,
    train_max_document_length=128,
    dev_max_documents=800,
    seed=12,
    # this study came before the recipe (finetune/recipe.py) and is kept as it ran: no mined negatives
    # unless a variant asks, no interpolation with the base towers
    hard_negatives=0,
    interpolate=False,
)
# How each collection is trained and where its dev queries come from.
COLLECTIONS = {
    # avoid_known_positives came later (default on); SciFact was trained without it, and with ~1.1
    # positives per query it would rarely change a batch
    "scifact": dict(
        split="train", dev_fraction=0.15, avoid_known_positives=False
    ),  # 919 pairs; 15% of the train queries held out for choices
    # Chosen on NFCorpus dev by bench/finetune_dev.py (results/finetune_dev.json): up to 8 of each train
    # query's judged documents (17,140 pairs), one epoch at 5e-5, known positives kept out of each
    # other's batches, documents at 128 tokens in training *and* in the saved towers (the towers
    # trained at 128 scored lower on dev when indexing at 256). The first settings (640 pairs, 3 epochs,
    # 256 tokens at index time) were scored on test too; those rows are kept, marked superseded.
    "nfcorpus": dict(
        split="train",
        dev_split="dev",
        max_positives_per_query=8,
        max_pairs=None,
        avoid_known_positives=True,
        learning_rate=5e-5,
        epochs=1,
        evaluation_steps=120,
        dev_max_documents=None,
        max_document_length=128,
        train_max_document_length=None,
    ),
}
VARIANTS = {
    "untied": dict(),
    "tied": dict(tied=True),
    "untied+hn": dict(
        hard_negatives=1, negative_miner="bm25", negative_range_min=3, negative_range_max=50, negative_margin=0.05
    ),
}
CROSS = {"scifact": "nfcorpus", "nfcorpus": "scifact"}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding the BEIR collections")
    parser.add_argument("--collections", nargs="+", default=list(COLLECTIONS), choices=list(COLLECTIONS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/dualsearch-bench-finetune"), help="models and indexes (large)"
    )
    parser.add_argument("--results", type=Path, default=REPO / "results" / "finetune.json")
    parser.add_argument("--table", type=Path, default=REPO / "docs" / "finetune.md")
    parser.add_argument("--fp32", action="store_true", help="encode and train in float32 (default: bfloat16 autocast)")
    parser.add_argument("--resume", action="store_true", help="keep the runs already in --results and do the rest")
    parser.add_argument(
        "--supersede",
        action="store_true",
        help="with --resume: run the selected fine-tuned variants again (new settings); their earlier "
        "rows stay in the results, marked superseded",
    )
    parser.add_argument(
        "--no-cross", action="store_true", help="skip scoring the separate towers on the other collection"
    )
    return parser.parse_args(argv)


def bf16_context(enabled: bool):
    from dualsearch.finetune.evaluator import bf16_autocast

    return bf16_autocast(enabled)


def test_metrics(
    model: str, beir_dir: Path, work: Path, bf16: bool, subsets: dict[str, set[str]] | None = None
) -> dict[str, float]:
    """Index the test collection with ``model``'s document tower (Flat, exact) and score its test queries;
    each of ``subsets`` (name -> query ids) is scored on its own too, under its name with its query count."""
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.read.evaluation import evaluation_run, score_run
    from dualsearch.read.searcher import Searcher
    from dualsearch.towers.dual_encoder import DualEncoder
    from dualsearch.write.build import IndexConfig, build_index

    index_dir = work / f"index-{beir_dir.name}"
    shutil.rmtree(index_dir, ignore_errors=True)
    started = time.perf_counter()
    encoder = DualEncoder.load(model, batch_size=32)
    with bf16_context(bf16):
        build_index(
            read_corpus(str(beir_dir)),
            index_dir,
            encoder,
            IndexConfig(factory="Flat", max_passages=1),
            corpus_name=str(beir_dir),
        )
        searcher = Searcher.open(index_dir, encoder=encoder)
        qrels, run = evaluation_run(searcher, beir_dir, "test", exact=True, mode="dense")  # the towers alone, as MTEB
    searcher.close()
    shutil.rmtree(index_dir, ignore_errors=True)
    metrics = {name: round(value, 4) for name, value in score_run(qrels, run).items()}
    for name, query_ids in (subsets or {}).items():
        subset = {query: judged for query, judged in qrels.items() if query in query_ids}
        scored = score_run(subset, {query: run[query] for query in subset}) if subset else {}
        metrics[name] = {"queries": len(subset)} | {metric: round(value, 4) for metric, value in scored.items()}
    logger.info("%s on %s test: %s (%.0fs)", model, beir_dir.name, metrics, time.perf_counter() - started)
    return metrics | {"eval_seconds": round(time.perf_counter() - started)}


def bm25_metrics(beir_dir: Path) -> dict[str, float]:
    from dualsearch.corpora import beir
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.finetune.mining import Bm25Ranker
    from dualsearch.read.evaluation import RUN_DEPTH, score_run

    qrels = {q: j for q, j in beir.read_qrels(beir_dir, "test").items() if any(v > 0 for v in j.values())}
    queries = beir.read_queries(beir_dir)
    ranker = Bm25Ranker({d.id: d.encoding_text() for d in read_corpus(str(beir_dir))})
    run = {q: dict(ranker.rank(queries[q], [], RUN_DEPTH).hits) for q in qrels}
    return {name: round(value, 4) for name, value in score_run(qrels, run).items()}


def finetune_run(collection: str, variant: str, args, bf16: bool) -> dict:
    from dualsearch.finetune.config import FinetuneConfig
    from dualsearch.finetune.train import finetune

    config = FinetuneConfig(**{**COMMON, **COLLECTIONS[collection], **VARIANTS[variant], "bf16": bf16})  # later wins
    out = args.work / f"{collection}-{variant}"
    report = finetune(args.data / collection, out, config, overwrite=True)
    row = {
        "collection": collection,
        "system": f"fine-tuned {variant}",
        "model_dir": str(out),
        "config": config.to_dict(),
        "train_pairs": report.train_pairs,
        "negatives_per_pair": report.negatives_per_pair,
        "dev": {
            "queries": report.dev_queries,
            "documents": report.dev_documents,
            "before": report.before,
            "after": report.after,
            "history": report.history,
            "best_checkpoint": report.best_checkpoint,
        },
        "train_seconds": report.train_seconds,
        "mining_seconds": report.mining_seconds,
    }
    row["test"] = test_metrics(str(out), args.data / collection, args.work, bf16)
    other = CROSS[collection]
    if variant == "untied" and not args.no_cross and (args.data / other / "corpus.jsonl").is_file():
        row["cross_test"] = {other: test_metrics(str(out), args.data / other, args.work, bf16)}
    return row


def mark_superseded(runs: list[dict], collections: list[str], systems: list[str]) -> None:
    """Rename earlier rows of these systems so that new runs take their place; the old test scores stay visible.

    Example:
        >>> runs = [{"collection": "nfcorpus", "system": "fine-tuned tied"}]
        >>> mark_superseded(runs, ["nfcorpus"], ["fine-tuned tied"]); runs[0]["system"], runs[0]["superseded"]
        ('fine-tuned tied, earlier settings (superseded)', True)
    """
    for row in runs:
        if row["collection"] in collections and row["system"] in systems and not row.get("superseded"):
            row["system"] += ", earlier settings (superseded)"
            row["superseded"] = True


def machine() -> dict:
    import torch

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return info


def save(results: dict, args) -> None:
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(render_table(results), encoding="utf-8")


def _cell(metrics: dict | None, name: str) -> str:
    return f"{metrics[name]:.4f}" if metrics and name in metrics else "-"


def render_table(results: dict) -> str:
    made_by = " then ".join(f"`{command}`" for command in results["commands"])
    lines = [
        "# Fine-tuning benchmark",
        "",
        f"Made by {made_by} (the last one started {results['date']}) "
        f"({results['machine']['cpu_count']} cores shared with other work, "
        f"load average {results['machine']['load_average_at_start']} at start). Raw numbers: `results/finetune.json`.",
        "",
        "Test split, scored once. Training time is the trainer's wall time (mining included separately in the JSON).",
        "",
        "| collection | system | nDCG@10 | Recall@100 | MRR@10 | training |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["runs"]:
        seconds = row.get("train_seconds")
        trained = f"{seconds / 60:.1f} min" if seconds else "-"
        lines.append(
            f"| {row['collection']} | {row['system']} | {_cell(row['test'], 'ndcg@10')} | "
            f"{_cell(row['test'], 'recall@100')} | {_cell(row['test'], 'mrr@10')} | {trained} |"
        )
    cross = [(row, other, m) for row in results["runs"] for other, m in row.get("cross_test", {}).items()]
    if cross:
        lines += [
            "",
            "Towers trained on one collection, scored zero-shot on the other's test split:",
            "",
            "| trained on | scored on | nDCG@10 | Recall@100 | MRR@10 |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {row['collection']} ({row['system']}) | {other} | {_cell(m, 'ndcg@10')} | {_cell(m, 'recall@100')} | "
            f"{_cell(m, 'mrr@10')} |"
            for row, other, m in cross
        ]
    dev = [row for row in results["runs"] if row.get("dev")]
    if dev:
        lines += [
            "",
            "Dev nDCG@10 (capped dev corpus, see settings) before and after training, and the checkpoint kept:",
            "",
            "| collection | system | dev before | dev after | kept |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['collection']} | {r['system']} | {_cell(r['dev']['before'], 'ndcg@10')} | "
            f"{_cell(r['dev']['after'], 'ndcg@10')} | {r['dev']['best_checkpoint']} |"
            for r in dev
        ]
    lines += ["", "Settings: " + json.dumps(results["settings"]), ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    log_phases_only()
    from dualsearch.index.manifest import library_versions, now_iso

    bf16 = not args.fp32
    previous = json.loads(args.results.read_text()) if args.resume and args.results.is_file() else {"runs": []}
    command = "python -m bench.finetune " + " ".join(argv if argv is not None else sys.argv[1:])
    results = {
        "commands": previous.get("commands", []) + [command],
        "date": now_iso(),
        "machine": machine(),
        "library_versions": library_versions(),
        "settings": {
            "common": COMMON,
            "collections": COLLECTIONS,
            "variants": VARIANTS,
            "precision": "bfloat16 autocast (training and test encoding)" if bf16 else "float32",
        },
        "runs": previous["runs"],
    }
    if args.supersede:
        mark_superseded(results["runs"], args.collections, [f"fine-tuned {v}" for v in args.variants])
    done = {(row["collection"], row["system"]) for row in results["runs"]}
    args.work.mkdir(parents=True, exist_ok=True)
    for collection in args.collections:
        beir_dir = args.data / collection
        if not (beir_dir / "corpus.jsonl").is_file():
            logger.warning("skipping %s: not found at %s", collection, beir_dir)
            continue
        jobs = [
            ("bm25 (bm25s)", lambda: {"test": bm25_metrics(beir_dir)}),
            ("zero-shot towers", lambda: {"test": test_metrics("default", beir_dir, args.work, bf16)}),
        ]
        jobs += [(f"fine-tuned {v}", lambda v=v: finetune_run(collection, v, args, bf16)) for v in args.variants]
        for system, job in jobs:
            if (collection, system) in done:
                continue
            started = time.perf_counter()
            row = {"collection": collection, "system": system, **job()}
            row["wall_seconds"] = round(time.perf_counter() - started)
            results["runs"].append(row)
            save(results, args)
            logger.info("%s / %s done in %ds: %s", collection, system, row["wall_seconds"], row["test"])
    save(results, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
