"""How much the document length saved with fine-tuned towers matters on a collection they were not
trained on: SciFact *train* queries (never test) ranked over the whole SciFact corpus by the zero-shot
towers and by towers fine-tuned elsewhere, with documents cut at each length.

    python -m bench.finetune_length [--model /tmp/dualsearch-bench-defaults/nfcorpus] [--lengths 128 256]

The model defaults to the NFCorpus run of ``bench.finetune_defaults``. SciFact abstracts are long (72%
past 256 tokens), so this is where a short saved length costs most; the numbers informed
:func:`dualsearch.finetune.selection.choose_document_length`. Encoding follows the fine-tuning recipe's
precision (bfloat16 autocast where the CPU has it natively). Writes results/finetune_length.json.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.common import DEFAULT_DATA, log_phases_only, timed, write_result

logger = logging.getLogger("bench.finetune_length")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", default="/tmp/dualsearch-bench-defaults/nfcorpus", help="fine-tuned towers")
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256])
    args = parser.parse_args(argv)
    log_phases_only()
    if not Path(args.model).is_dir():
        parser.error(f"no towers at {args.model}: run `python -m bench finetune_defaults` first, or pass --model")
    from dualsearch.finetune.data import load_training_data
    from dualsearch.finetune.evaluator import RetrievalEvaluator
    from dualsearch.finetune.model import set_max_lengths
    from dualsearch.finetune.recipe import cpu_has_native_bf16
    from dualsearch.towers.dual_encoder import DualEncoder

    train = load_training_data(str(args.data / "scifact"), split="train")
    evaluator = RetrievalEvaluator(train, train.documents, bf16=cpu_has_native_bf16())
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for name, model_path in (("zero-shot", "default"), ("fine-tuned", args.model)):
        model = DualEncoder.load(model_path).model
        for length in args.lengths:
            set_max_lengths(model, 64, length)
            metrics, seconds = timed(lambda: evaluator(model))
            rounded = {key.removeprefix("dev_"): round(value, 4) for key, value in metrics.items()}
            scores.setdefault(name, {})[str(length)] = rounded
            logger.info("%s at %d tokens: %s (%.0f s)", name, length, rounded, seconds)
    path = write_result(
        "finetune_length",
        {
            "queries": "SciFact train (judged), texts only",
            "query_count": len(evaluator.query_ids),
            "documents": len(evaluator.document_ids),
            "model": args.model,
            "precision": "bfloat16 autocast" if cpu_has_native_bf16() else "float32",
            "scores_by_model_and_length": scores,
        },
    )
    logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
