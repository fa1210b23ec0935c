"""Cosine against dot product against Euclidean distance: ``dualsearch finetune scifact --out MODEL
[--similarity S]`` for each, chosen on dev, SciFact test scored once for each.

    .venv/bin/python -m bench.finetune_similarity [--similarities cosine dot euclidean] [--resume [--redo S ...]]

Each run is the user's command with the recipe's defaults (dev: SciFact's held-out train queries,
interpolation and document length chosen on it), differing only in ``--similarity``. The choice is
the similarity with the best dev nDCG@10 of the saved towers; test is scored once per run, after
every run has trained, the way ``bench.finetune_defaults`` scores towers (a Flat index of whole
documents truncated to the towers' length, dense, exact), so the table shows what each choice gives
and the choice never saw test. Writes results/finetune_similarity.json after every step
(``--resume`` keeps finished steps; ``--redo`` trains some again, keeping the runs it replaces under
``replaced_runs``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from bench.common import DEFAULT_DATA, RESULTS_DIR, best_on_dev, log_phases_only, write_result
from bench.finetune import test_metrics
from bench.finetune_defaults import run_finetune

logger = logging.getLogger("bench.finetune_similarity")
SIMILARITIES = ("cosine", "dot", "euclidean")
COLLECTION = "scifact"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding scifact/ (BEIR layout)")
    parser.add_argument("--similarities", nargs="+", default=list(SIMILARITIES), choices=SIMILARITIES)
    parser.add_argument("--work", type=Path, default=Path("/tmp/dualsearch-bench-similarity"), help="models (large)")
    parser.add_argument("--resume", action="store_true", help="keep the steps already in the results file")
    parser.add_argument(
        "--redo", nargs="+", default=[], choices=SIMILARITIES, help="with --resume: train and score these afresh"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    log_phases_only()
    from dualsearch.finetune.recipe import cpu_has_native_bf16

    bf16 = cpu_has_native_bf16()  # what the recipe trains under; test encoding follows it
    path = RESULTS_DIR / "finetune_similarity.json"
    previous = json.loads(path.read_text()) if args.resume and path.is_file() else {}
    runs: dict = previous.get("runs", {})
    replaced: dict = previous.get("replaced_runs", {})  # earlier runs of a redone similarity, kept in view
    for similarity in args.redo:
        if similarity in runs:
            replaced.setdefault(similarity, []).append(runs.pop(similarity))
    args.work.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        chosen = best_on_dev(runs) if runs else None
        write_result(
            "finetune_similarity",
            {"collection": COLLECTION, "test_precision": "bfloat16 autocast" if bf16 else "float32"}
            | {"runs": runs, "chosen_on_dev": chosen, "replaced_runs": replaced},
        )

    for similarity in args.similarities:  # every run trains before any test is scored
        if similarity not in runs:
            extra = [] if similarity == "cosine" else ["--similarity", similarity]  # cosine is the default
            runs[similarity] = run_finetune(similarity, args.data / COLLECTION, extra, args.work)
            save()
    for similarity in args.similarities:
        if "test" not in runs[similarity]:
            runs[similarity]["test"] = test_metrics(
                runs[similarity]["model_dir"], args.data / COLLECTION, args.work, bf16
            )
            save()
    print(
        f"chosen on dev: {best_on_dev(runs)}; test nDCG@10: "
        + ", ".join(f"{name} {run['test']['ndcg@10']}" for name, run in runs.items()),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
