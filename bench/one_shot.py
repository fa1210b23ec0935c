"""A one-shot search as a shell user runs it, and the light query path's equality with PyTorch.

    python -m bench.one_shot [--data ../shared/data] [--work /tmp/dualsearch-bench/one-shot] [--runs 10]
                             [--finetuned MODEL_DIR]

1. Whole processes, ``--runs`` times each, interleaved (machine drift hits all alike), min/median/max
   wall seconds: ``dualsearch search INDEX "vitamin d"`` the light way (the index's ONNX query tower)
   and today's way (``--backend torch``: PyTorch towers), ``dualsearch --help`` and
   ``python -c "import dualsearch"``, on a SciFact index built with the defaults.
2. Equality, for the default towers and (``--finetuned``) a fine-tuned Router: an index of SciFact
   built by the PyTorch towers; every test query encoded by the light path and by PyTorch (lowest
   cosine), and ``evaluate`` (the index's default mode and nprobe) through each (nDCG@10).

Query metadata is never read (texts only). Writes results/one_shot.json.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.backends import query_texts
from bench.common import DEFAULT_DATA, log_phases_only, write_result

logger = logging.getLogger("bench.one_shot")
QUERY = "vitamin d"


def commands(index_dir: Path) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "dualsearch"]
    return {
        "search (light: ONNX query tower)": [*cli, "search", str(index_dir), QUERY],
        "search (PyTorch towers, --backend torch)": [*cli, "search", str(index_dir), QUERY, "--backend", "torch"],
        "dualsearch --help": [*cli, "--help"],
        "python -c 'import dualsearch'": [sys.executable, "-c", "import dualsearch"],
    }


def time_processes(named: dict[str, list[str]], runs: int) -> dict[str, dict]:
    seconds: dict[str, list[float]] = {name: [] for name in named}
    for _ in range(runs):
        for name, argv in named.items():
            started = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            seconds[name].append(time.perf_counter() - started)
    return {
        name: {
            "min_s": round(min(values), 3),
            "median_s": round(statistics.median(values), 3),
            "max_s": round(max(values), 3),
        }
        for name, values in seconds.items()
    }


def build(corpus_dir: Path, index_dir: Path, encoder) -> None:
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.index.layout import is_index_dir
    from dualsearch.write.build import build_index

    if not is_index_dir(index_dir):
        build_index(read_corpus(corpus_dir), index_dir, encoder, corpus_name=str(corpus_dir), show_progress=True)


def equality(corpus_dir: Path, index_dir: Path, model: str) -> dict:
    """Light path against PyTorch on one index built by ``model``'s PyTorch towers."""
    from dualsearch.read.evaluation import evaluate
    from dualsearch.read.searcher import Searcher
    from dualsearch.towers.dual_encoder import DualEncoder

    torch_encoder = DualEncoder.load(model)
    build(corpus_dir, index_dir, torch_encoder)
    with Searcher.open(index_dir, encoder=torch_encoder) as searcher:  # refuses an index of other towers
        if searcher.manifest.document_backend != "torch":
            raise SystemExit(f"{index_dir} was not built by PyTorch towers")
    queries = query_texts(corpus_dir)
    answer = {"model": model, "queries": len(queries)}
    with Searcher.open(index_dir) as light, Searcher.open(index_dir, encoder=torch_encoder) as full:
        ours, theirs = light.encoder.encode_queries(queries), torch_encoder.encode_queries(queries)
        answer["light_encoder"] = type(light.encoder).__name__
        answer["lowest_query_cosine"] = round(float(np.min(np.sum(ours * theirs, axis=1))), 7)
        for name, searcher in (("light", light), ("torch", full)):
            answer[f"ndcg10_{name}"] = round(evaluate(searcher, corpus_dir, "test")["ndcg@10"], 5)
    answer["ndcg10_difference"] = round(abs(answer["ndcg10_light"] - answer["ndcg10_torch"]), 5)
    return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/dualsearch-bench/one-shot"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--finetuned", default=None, help="a fine-tuned Router model directory to check as well")
    parser.add_argument(
        "--default-index",
        type=Path,
        default=None,
        help="a SciFact index already built by the default PyTorch towers (e.g. bench.backends' scifact-torch)",
    )
    args = parser.parse_args(argv)
    log_phases_only()
    corpus_dir = args.data / "scifact"
    models = {"default": "default", **({"finetuned": args.finetuned} if args.finetuned else {})}
    results: dict = {"query": QUERY, "runs": args.runs, "equality": {}}
    indexes = {name: args.work / f"scifact-{name}" for name in models}
    if args.default_index:
        indexes["default"] = args.default_index
    for name, model in models.items():
        logger.info("equality of the light path with PyTorch: %s", model)
        results["equality"][name] = equality(corpus_dir, indexes[name], model)
        logger.info("%s", results["equality"][name])
    logger.info("timing whole processes, %d runs each", args.runs)
    results["processes"] = time_processes(commands(indexes["default"]), args.runs)
    for name, row in results["processes"].items():
        logger.info("%-45s %s", name, row)
    path = write_result("one_shot", results)
    logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
