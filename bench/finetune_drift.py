"""How far apart separately trained towers have drifted: mean cosine between the query tower's and the
document tower's vector of the same text (1.0 for tied towers), and each tower's relative weight change
from the base.

    python -m bench finetune_drift MODEL_DIR BEIR_DIR [--split test]

Writes results/finetune_drift.json (one entry per model directory, merged with what is there).
"""

from __future__ import annotations

import argparse
import json

from bench.common import RESULTS_DIR, repository_relative, write_result


def drift(model_dir: str, beir_dir: str, split: str = "test") -> dict[str, float]:
    import numpy as np

    from dualsearch.corpora import beir
    from dualsearch.finetune.model import tower_modules
    from dualsearch.towers.dual_encoder import DualEncoder
    from dualsearch.towers.weights import default_base_path, load_sentence_transformer

    judged = sorted(q for q, j in beir.read_qrels(beir_dir, split).items() if any(v > 0 for v in j.values()))
    queries = beir.read_queries(beir_dir)  # texts only, never metadata
    texts = [queries[q] for q in judged]
    encoder = DualEncoder.load(model_dir)
    same_text = float(np.mean(np.sum(encoder.encode_queries(texts) * encoder.encode_documents(texts), axis=1)))
    base = load_sentence_transformer(default_base_path())[0].state_dict()
    result = {"mean_cosine_query_vs_document_tower": round(same_text, 4)}
    for route, modules in (tower_modules(encoder.model) or {}).items():
        state = modules[0].state_dict()
        change = sum(float(((state[k].float() - base[k].float()) ** 2).sum()) for k in base)
        size = sum(float((base[k].float() ** 2).sum()) for k in base)
        result[f"{route}_tower_relative_weight_change"] = round((change / size) ** 0.5, 5)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("beir_dir")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    measured = drift(args.model_dir, args.beir_dir, args.split)
    print(measured)
    path = RESULTS_DIR / "finetune_drift.json"
    models = json.loads(path.read_text(encoding="utf-8")).get("models", {}) if path.is_file() else {}
    models[repository_relative(args.model_dir)] = {"beir_dir": repository_relative(args.beir_dir), "split": args.split}
    models[repository_relative(args.model_dir)] |= measured
    write_result("finetune_drift", {"models": models})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
