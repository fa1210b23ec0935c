"""Dev-only fine-tuning trials: how settings were chosen before test was scored.

    python -m bench finetune_dev NAME --collection nfcorpus --set learning_rate=2e-5 --set epochs=1 ...

Each trial trains towers with ``bench.finetune``'s shared settings for the collection, overridden
by ``--set KEY=VALUE`` (values are JSON: numbers, true/false, null, quoted strings), and records only
dev metrics (before, at every evaluation, after) and timings in results/finetune_dev.json. Nothing
here reads a test split, so trials can be run as often as needed; the settings they pick are then
fixed in ``bench/finetune.py`` and scored on test once. The table docs/finetune-dev.md is rewritten
after every trial (``--render-only`` rewrites it without training).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from bench.common import DEFAULT_DATA, REPO
from bench.finetune import COLLECTIONS, COMMON, machine

logger = logging.getLogger("bench.finetune_dev")


def parse_overrides(items: list[str]) -> dict:
    """``["learning_rate=2e-5", "tied=true"]`` -> ``{"learning_rate": 2e-05, "tied": True}``.

    Example:
        >>> parse_overrides(["epochs=1", "negative_miner=\\"bm25\\"", "max_pairs=null"])
        {'epochs': 1, 'negative_miner': 'bm25', 'max_pairs': None}
    """
    overrides = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise SystemExit(f"--set takes KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            raise SystemExit(f"--set {key}: {value!r} is not JSON (quote strings: {key}='\"text\"')") from None
    return overrides


def render_table(results: dict) -> str:
    """Markdown: one row per trial, its overrides, and dev nDCG@10 before, at each evaluation and kept."""
    lines = [
        "# Fine-tuning trials on dev",
        "",
        "Written by `bench/finetune_dev.py` from `results/finetune_dev.json` (each trial's full config, "
        "machine and command are there). Dev splits only: no trial read a test split. Dev nDCG@10 on the full "
        "corpus; evaluations during training use the training document length, so compare a trial's curve "
        "with its own `before` only when both use the same length (`doc tokens`).",
        "",
        "| trial | overrides of bench/finetune.py's settings | pairs | doc tokens (train / index) | before | "
        "during training (step: nDCG@10) | kept | after | training |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for trial in results["trials"]:
        config = trial["config"]
        train_length = config["train_max_document_length"] or config["max_document_length"]
        curve = ", ".join(f"{point['step']}: {point['ndcg@10']:.4f}" for point in trial["dev_history"])
        overrides = ", ".join(f"{key}={value}" for key, value in trial["overrides"].items())
        lines.append(
            f"| {trial['name']} | {overrides} | {trial['train_pairs']} | {train_length} / "
            f"{config['max_document_length']} | {trial['dev_before']['ndcg@10']:.4f} | {curve} | "
            f"{trial['best_checkpoint']} | {trial['dev_after']['ndcg@10']:.4f} | "
            f"{trial['train_seconds'] / 60:.1f} min |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="what to call this trial in the results file")
    parser.add_argument("--collection", default="nfcorpus", choices=list(COLLECTIONS))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--work", type=Path, default=Path("/tmp/dualsearch-bench-finetune-dev"))
    parser.add_argument("--results", type=Path, default=REPO / "results" / "finetune_dev.json")
    parser.add_argument("--table", type=Path, default=REPO / "docs" / "finetune-dev.md")
    parser.add_argument("--render-only", action="store_true", help="only rewrite the table from the results file")
    args = parser.parse_args(argv)
    if args.render_only:
        args.table.write_text(render_table(json.loads(args.results.read_text())), encoding="utf-8")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("sentence_transformers", "transformers", "bm25s", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from dualsearch.finetune.config import FinetuneConfig
    from dualsearch.finetune.train import finetune
    from dualsearch.index.manifest import now_iso

    settings = {**COMMON, **COLLECTIONS[args.collection], "bf16": True, **parse_overrides(args.overrides)}
    config = FinetuneConfig(**settings)
    started = time.perf_counter()
    report = finetune(args.data / args.collection, args.work / args.name, config, overwrite=True)
    trial = {
        "name": args.name,
        "collection": args.collection,
        "date": now_iso(),
        "machine": machine(),
        "command": "python -m bench.finetune_dev " + " ".join(argv if argv is not None else sys.argv[1:]),
        "overrides": parse_overrides(args.overrides),
        "config": config.to_dict(),
        "train_pairs": report.train_pairs,
        "dev_queries": report.dev_queries,
        "dev_documents": report.dev_documents,
        "dev_before": report.before,
        "dev_after": report.after,
        "dev_history": report.history,
        "best_checkpoint": report.best_checkpoint,
        "train_seconds": report.train_seconds,
        "wall_seconds": round(time.perf_counter() - started),
    }
    results = json.loads(args.results.read_text()) if args.results.is_file() else {"trials": []}
    results["trials"] = [t for t in results["trials"] if t["name"] != args.name] + [trial]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    args.table.write_text(render_table(results), encoding="utf-8")
    logger.info(
        "%s: dev nDCG@10 %.4f -> %.4f (%s)",
        args.name,
        report.before.get("ndcg@10", float("nan")),
        report.after.get("ndcg@10", float("nan")),
        report.best_checkpoint,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
