"""Training on the simulated click log: sampled, impression and mixed negatives, each with and without
logQ correction, chosen on NFCorpus dev, every model scored once on NFCorpus test.

    .venv/bin/python -m bench.click_training [--resume] [--runs sampled sampled-logq ...]

The log is the one ``bench.click_log`` simulates over NFCorpus *train* queries (made first if missing,
with the same seed). Each run is the user's command, ``dualsearch finetune LOG --corpus nfcorpus --out
MODEL --negatives N --logq|--no-logq``, with the recipe's defaults otherwise; dev is NFCorpus's own dev
judgements (the corpus's ``qrels/dev.tsv``, queries whose text the log holds left out). The choice
is the run with the best dev nDCG@10 of its saved towers, computed from dev alone; test is scored
once per model, right after it trains (a resumed benchmark then needs no model of an earlier
session). Test also reports *cold-start* queries: those none of whose relevant documents was ever
clicked in the log, which only the document tower's generalisation can serve. The zero-shot towers
are scored the same way in the same run. Writes results/click_training.json after every step
(``--resume`` keeps finished steps).

Every step records the SHA-256 of the log it used, and ``--resume`` redoes a step made on another log
(or, for a step recorded before hashes were, one trained before the log file was last written): the
simulated shown lists depend on the towers' floating-point results, so a log rebuilt by other code or
on another CPU differs in a few records, and runs on two logs cannot be compared. results/click_log.json
is rewritten to describe the log trained on whenever its hash is not that log's.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.common import DEFAULT_DATA, RESULTS_DIR, best_on_dev, log_phases_only, write_result
from bench.finetune import test_metrics
from bench.finetune_defaults import run_finetune

logger = logging.getLogger("bench.click_training")
LOG = Path("/tmp/dualsearch-bench/clicks/nfcorpus-train.jsonl")
RUNS = {  # name -> extra options of `dualsearch finetune LOG --corpus nfcorpus --out MODEL`
    # --no-logq spelled out: a click log's default is now the run chosen here (sampled with logQ)
    "sampled": ["--negatives", "sampled", "--no-logq"],
    "sampled-logq": ["--negatives", "sampled", "--logq"],
    "impressions": ["--negatives", "impressions", "--no-logq"],
    "impressions-logq": ["--negatives", "impressions", "--logq"],
    "mixed": ["--negatives", "mixed", "--no-logq"],
    "mixed-logq": ["--negatives", "mixed", "--logq"],
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding nfcorpus/ (BEIR layout)")
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/dualsearch-bench-clicks"), help="models (large)")
    parser.add_argument("--resume", action="store_true", help="keep the steps already in the results file")
    return parser.parse_args(argv)


def made_on_log(step: dict, log_hash: str, log_written: datetime) -> bool:
    """Whether a finished step used the log whose hash is ``log_hash``, written at ``log_written``.

    Example:
        >>> written = datetime(2026, 12, 3, 22, 27, tzinfo=UTC)
        >>> made_on_log({"log_sha256": "ab"}, "ab", written), made_on_log({"log_sha256": "cd"}, "ab", written)
        (True, False)
        >>> made_on_log({"report": {"created": "2026-12-03T22:41:00Z"}}, "ab", written)  # before hashes: by date
        True
        >>> made_on_log({"report": {"created": "2026-12-03T21:38:49Z"}}, "ab", written)
        False
    """
    if "log_sha256" in step:
        return step["log_sha256"] == log_hash
    created = step.get("report", {}).get("created")
    return created is not None and datetime.fromisoformat(created.replace("Z", "+00:00")) >= log_written


def clicked_documents(log: Path) -> set[str]:
    """Every document clicked at least once in the log."""
    with log.open(encoding="utf-8") as lines:
        return {document for line in lines if line.strip() for document in json.loads(line)["clicked"]}


def cold_start_queries(qrels: dict[str, dict[str, int]], clicked: set[str]) -> set[str]:
    """Test queries none of whose relevant documents was clicked in the training log.

    Example:
        >>> sorted(cold_start_queries({"q1": {"a": 1, "b": 0}, "q2": {"c": 2}, "q3": {"b": 1}}, {"a", "b"}))
        ['q2']
    """
    return {query for query, judged in qrels.items() if not {d for d, grade in judged.items() if grade > 0} & clicked}


def main(argv=None) -> int:
    args = parse_args(argv)
    log_phases_only()
    from dualsearch.corpora import beir
    from dualsearch.finetune.recipe import cpu_has_native_bf16

    nfcorpus = args.data / "nfcorpus"
    from bench import click_log

    if not LOG.is_file():
        click_log.main(["--data", str(args.data), "--out", str(LOG)])
    log_hash = click_log.file_sha256(LOG)
    described = RESULTS_DIR / "click_log.json"
    if not described.is_file() or json.loads(described.read_text()).get("log_sha256") != log_hash:
        click_log.describe(LOG)  # the statistics reported are those of the log trained on
    log_written = datetime.fromtimestamp(LOG.stat().st_mtime, UTC)
    clicked = clicked_documents(LOG)
    cold = cold_start_queries(beir.read_qrels(nfcorpus, "test"), clicked)
    bf16 = cpu_has_native_bf16()
    path = RESULTS_DIR / "click_training.json"
    previous = json.loads(path.read_text()) if args.resume and path.is_file() else {}
    runs: dict = {}
    for name, step in previous.get("runs", {}).items():
        if made_on_log(step, log_hash, log_written):
            runs[name] = {"log_sha256": log_hash, **step}
        else:
            logger.warning("%s was trained on another click log than %s: it runs again", name, LOG)
    zero_shot: dict = previous.get("zero_shot", {})
    if zero_shot.get("log_sha256") != log_hash:  # its cold-start queries come from the log
        zero_shot = {}
    args.work.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        write_result(
            "click_training",
            {
                "log": str(LOG),
                "log_sha256": log_hash,
                "clicked_documents": len(clicked),
                "cold_start_test_queries": len(cold),
                "test_precision": "bfloat16 autocast" if bf16 else "float32",
                "zero_shot": zero_shot,
                "runs": runs,
                "runs_planned": list(RUNS),  # a benchmark stopped and resumed later has fewer runs meanwhile
                "chosen_on_dev": best_on_dev(runs) if runs else None,
            },
        )

    subsets = {"cold_start": cold}
    for name in args.runs:
        if name not in runs:
            step = run_finetune(name, LOG, ["--corpus", str(nfcorpus), *RUNS[name]], args.work)
            runs[name] = {"log_sha256": log_hash, **step}
            save()
        if "test" not in runs[name]:  # scored at once, so a resumed run never needs the model again
            runs[name]["test"] = test_metrics(runs[name]["model_dir"], nfcorpus, args.work, bf16, subsets)
            save()
    if not zero_shot:
        zero_shot.update(log_sha256=log_hash, **test_metrics("default", nfcorpus, args.work, bf16, subsets))
        save()
    print(f"chosen on dev: {best_on_dev(runs)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
