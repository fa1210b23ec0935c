"""How much each tower's move is worth in-domain and costs elsewhere: a grid of interpolation weights
per tower (query alpha x document alpha) for a model trained by ``dualsearch finetune``, scored on the
model's own dev set and on the other collection's train/dev queries (never test).

    .venv/bin/python -m bench.finetune_tower_alphas --model /tmp/dualsearch-bench-defaults/nfcorpus \\
        --collection nfcorpus [--other scifact]

The model directory holds the towers saved at the alpha chosen on dev; the tuned towers are recovered
from them and the base (``tuned = base + (saved - base) / alpha``, exact up to float rounding), so no
training is rerun. Each document alpha encodes both corpora once; each query alpha encodes the queries
once; every pair is then scored by exact search. Writes results/finetune_tower_alphas.json (one entry
per model, merged with what is there).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from bench.common import DEFAULT_DATA, REPO, machine

logger = logging.getLogger("bench.finetune_tower_alphas")

GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
OTHER = {"scifact": "nfcorpus", "nfcorpus": "scifact"}
OTHER_SPLIT = {"scifact": "train", "nfcorpus": "dev"}  # the other collection's queries we may look at


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a model directory written by dualsearch finetune")
    parser.add_argument("--collection", required=True, choices=sorted(OTHER), help="what the model was trained on")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--results", type=Path, default=REPO / "results" / "finetune_tower_alphas.json")
    return parser.parse_args(argv)


def recovered_tuned(base: dict, saved: dict, alpha: float) -> dict:
    """The tuned weights behind ``saved = base + alpha * (tuned - base)``, per tower."""
    if alpha == 1.0:
        return saved
    if alpha == 0.0:
        raise SystemExit("the model was saved at alpha 0 (the base towers): the tuned towers cannot be recovered")
    return {
        route: {
            name: (base[route][name] + (tensor - base[route][name]) / alpha) if tensor.is_floating_point() else tensor
            for name, tensor in state.items()
        }
        for route, state in saved.items()
    }


def load_tower_weights(model, base: dict, tuned: dict, route: str, alpha: float) -> None:
    import torch

    from dualsearch.finetune.interpolate import towers_of

    mixed = {
        name: torch.lerp(base[route][name], tensor, alpha) if tensor.is_floating_point() else tensor
        for name, tensor in tuned[route].items()
    }
    towers_of(model)[route].load_state_dict(mixed)


def evaluation_sets(collection: str, data: Path, config) -> dict:
    """name -> (query ids, query texts, qrels, document ids, document texts)."""
    from dualsearch.finetune.data import load_beir
    from dualsearch.finetune.train import load_splits

    _, dev = load_splits(data / collection, config)
    other = OTHER[collection]
    other_data = load_beir(data / other, OTHER_SPLIT[other])
    sets = {}
    for name, split in ((f"{collection} dev", dev), (f"{other} {OTHER_SPLIT[other]}", other_data)):
        query_ids = sorted(split.qrels)
        sets[name] = (
            query_ids,
            [split.queries[q] for q in query_ids],
            {q: dict(split.qrels[q]) for q in query_ids},
            list(split.documents),
            list(split.documents.values()),
        )
    return sets


def grid_scores(model, base, tuned, sets) -> dict[str, dict[str, dict[str, float]]]:
    """set name -> "query alpha/document alpha" -> nDCG@10 (and recall@100)."""
    import numpy as np

    from dualsearch.read.evaluation import score_run
    from dualsearch.towers.weights import DOCUMENT_ROUTE, QUERY_ROUTE

    query_vectors = {}
    for alpha in GRID:
        load_tower_weights(model, base, tuned, QUERY_ROUTE, alpha)
        query_vectors[alpha] = {
            name: model.encode_query(queries, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
            for name, (_, queries, _, _, _) in sets.items()
        }
    scores: dict[str, dict[str, dict[str, float]]] = {name: {} for name in sets}
    for document_alpha in GRID:
        started = time.perf_counter()
        load_tower_weights(model, base, tuned, DOCUMENT_ROUTE, document_alpha)
        for name, (query_ids, _, qrels, document_ids, documents) in sets.items():
            vectors = model.encode_document(documents, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
            for query_alpha in GRID:
                similarity = query_vectors[query_alpha][name] @ vectors.T
                top = np.argsort(-similarity, axis=1, kind="stable")[:, :100]
                run = {q: {document_ids[j]: float(similarity[i, j]) for j in top[i]} for i, q in enumerate(query_ids)}
                metrics = score_run(qrels, run)
                scores[name][f"{query_alpha}/{document_alpha}"] = {
                    "ndcg@10": round(metrics["ndcg@10"], 4),
                    "recall@100": round(metrics["recall@100"], 4),
                }
        logger.info("document alpha %s scored in %.0fs", document_alpha, time.perf_counter() - started)
    return scores


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    from dualsearch.finetune.config import FinetuneConfig
    from dualsearch.finetune.interpolate import snapshot
    from dualsearch.finetune.model import build_training_model
    from dualsearch.towers.weights import load_sentence_transformer

    report = json.loads((args.model / "train_report.json").read_text())
    config = FinetuneConfig.from_json(args.model / "train_config.json")
    model = load_sentence_transformer(str(args.model))
    saved = snapshot(model)
    base = snapshot(build_training_model(config.base))
    alpha = report["selection"]["alpha"]
    tuned = recovered_tuned(base, saved, alpha)
    sets = evaluation_sets(args.collection, args.data, config)
    started = time.perf_counter()
    scores = grid_scores(model, base, tuned, sets)
    entry = {
        "command": f"python -m bench.finetune_tower_alphas --model {args.model} --collection {args.collection}",
        "saved_alpha": alpha,
        "grid": list(GRID),
        "key": "query alpha/document alpha",
        "queries": {name: len(value[0]) for name, value in sets.items()},
        "documents": {name: len(value[3]) for name, value in sets.items()},
        "seconds": round(time.perf_counter() - started),
        "scores": scores,
    }
    results = json.loads(args.results.read_text()) if args.results.is_file() else {"runs": {}}
    results["runs"][args.collection] = entry
    results["machine"] = machine()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    for name, by_pair in scores.items():
        print(name)
        for pair, metrics in by_pair.items():
            print(f"  {pair:10s} {metrics['ndcg@10']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
