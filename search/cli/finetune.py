"""``dualsearch finetune DATA --out MODEL_DIR ...``: argparse wiring only; the work is
:func:`dualsearch.finetune.train.finetune`.

Options left out are set by the recipe (:mod:`dualsearch.finetune.recipe`: the benchmark's settings,
adapted to the data by written rules), or taken from ``--config FILE`` (a ``train_config.json``) when
one is given. Heavy libraries are imported inside the handler only.
"""

from __future__ import annotations

import argparse

from dualsearch.towers.similarity import SIMILARITIES

# CLI option -> FinetuneConfig field, for the options that map one to one.
_FIELD_OPTIONS = {
    "base": str,
    "split": str,
    "corpus": str,
    "dev_split": str,
    "dev_fraction": float,
    "epochs": float,
    "batch_size": int,
    "learning_rate": float,
    "document_learning_rate": float,
    "warmup_ratio": float,
    "weight_decay": float,
    "scale": float,
    "max_query_length": int,
    "max_document_length": int,
    "train_max_document_length": int,
    "seed": int,
    "mini_batch_size": int,
    "hard_negatives": int,
    "negative_miner": str,
    "negative_margin": float,
    "min_relevance": int,
    "max_pairs": int,
    "max_positives_per_query": int,
    "dev_max_documents": int,
    "evaluation_steps": int,
    "anchor_weight": float,
    "anchor_batch_size": int,
    "anchor_kind": str,
    "lora_rank": int,
}
_FLAGS = ("tied", "avoid_known_positives", "gradient_cache", "bf16", "interpolate", "keep_checkpoints", "logq")
_HELP = {
    "base": "base checkpoint of both towers: a sentence-transformers path or hub id (default: all-MiniLM-L6-v2)",
    "split": "qrels split of a BEIR directory to train on (default train)",
    "corpus": "for a click log: the corpus its document ids refer to (any form `dualsearch index` takes)",
    "dev_split": "BEIR qrels split for dev evaluation, of the data or of a click log's --corpus "
    "(default: dev when there is one)",
    "dev_fraction": "hold out this fraction of the training queries for dev evaluation, seeded "
    "(default 0.15 when the data has no dev split and 0.15 of its queries make at least 20)",
    "epochs": "training epochs (default: by the number of pairs, 3 under 2,000, 2 under 8,000, else 1)",
    "batch_size": "pairs per step (default 32)",
    "learning_rate": "peak learning rate (default 5e-5)",
    "document_learning_rate": "the document tower's own peak learning rate (default: --learning-rate); "
    "lower keeps it nearer the base, and it is the tower that forgets",
    "warmup_ratio": "fraction of steps warming up (default 0.1)",
    "weight_decay": "AdamW weight decay (default 0.01)",
    "scale": "loss similarity scale, 1/temperature (default 20 for cosine; for dot and euclidean, the scale "
    "giving the base towers' scores on the training data the spread cosine has at 20)",
    "max_query_length": "query tower truncation in tokens (default 64)",
    "max_document_length": "document tower truncation saved with the towers "
    "(default: chosen on dev between the training length and the base's)",
    "train_max_document_length": "document truncation while training "
    "(default 128; under 2,000 pairs the base's length)",
    "seed": "seed of sampling, hold-out and training (default 12)",
    "mini_batch_size": "forward-pass size with --gradient-cache (default 16)",
    "hard_negatives": "mined hard negatives per pair (default 1; 0 when queries have over 8 judged documents)",
    "negative_miner": "who mines hard negatives: bm25, towers (before training) or both (default bm25)",
    "negative_margin": "keep a negative only if its score <= positive score - MARGIN * |positive score| (default 0.05)",
    "min_relevance": "lowest relevance grade that makes a pair (default 1)",
    "max_pairs": "seeded subsample of the training pairs",
    "max_positives_per_query": "seeded cap of pairs per query (default 8 when queries have more on average)",
    "dev_max_documents": "dev corpus size: judged documents plus a seeded sample "
    "(default: the whole corpus up to 4,000 documents, else 2,000)",
    "evaluation_steps": "evaluate and checkpoint every N steps (default: 4 times in a one-epoch run, else every epoch)",
    "tied": "share one tower's weights for queries and documents (saved as a plain model)",
    "avoid_known_positives": "never batch a document with a query it is judged relevant to "
    "(an in-batch negative that is really a positive; default on)",
    "gradient_cache": "CachedMultipleNegativesRankingLoss: big batches in the memory of --mini-batch-size",
    "bf16": "bfloat16 autocast (default: on where the CPU has AMX or AVX512-BF16)",
    "interpolate": "mix the tuned towers with the base ones (WiSE-FT), weight chosen on dev (default on)",
    "keep_checkpoints": "keep MODEL_DIR/checkpoints",
    "anchor_weight": "hold each tower near its base while training: weight of the squared distance between its "
    "vectors of anchor texts from the corpus and the base's (default 1 from 8,000 training pairs, else 0: off)",
    "anchor_batch_size": "anchor texts per tower and step with --anchor-weight (default 8)",
    "anchor_kind": "what --anchor-weight holds: distance (each tower's vectors of the anchor texts) or ranking "
    "(the base towers' ranking of pseudo-queries' nearest documents, a KL term; default distance)",
    "lora_rank": "train low-rank adapters (LoRA, peft) of this rank on each trained tower instead of all its "
    "weights, merged into plain weights after training (default: full fine-tuning); try a higher --learning-rate",
    "logq": "correct each in-batch negative's logit by the log of how often it is a positive (Yi et al. 2019): "
    "popular documents are not pushed down for being everyone's negative (default: on for a click log, off otherwise)",
}


def add_finetune_command(commands) -> None:
    """Register ``finetune`` on the ``dualsearch`` sub-command parsers."""
    parser = commands.add_parser("finetune", help="fine-tune query and document towers on (query, document) pairs")
    parser.add_argument(
        "data",
        metavar="DATA",
        help="a BEIR directory, a .jsonl of {query, document[, negative]}, a click log .jsonl of "
        "{query, shown, clicked[, time]} (with --corpus), a save_to_disk dataset directory or hf:NAME[:SPLIT]",
    )
    parser.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to create")
    parser.add_argument("--config", metavar="JSON", help="start from this train_config.json; options override it")
    parser.add_argument("--overwrite", action="store_true", help="replace MODEL_DIR if it exists")
    dev = parser.add_mutually_exclusive_group()
    for name, kind in _FIELD_OPTIONS.items():
        target = dev if name in ("dev_split", "dev_fraction") else parser
        metavar = {int: "N", float: "X", str: "NAME"}[kind] if name != "base" else "PATH_OR_ID"
        target.add_argument(
            "--" + name.replace("_", "-"), dest=name, type=kind, default=None, metavar=metavar, help=_HELP[name]
        )
    parser.add_argument(
        "--train",
        choices=("both", "query"),
        default=None,
        help="towers to train (default both); query keeps the document tower, so an index built with the "
        "base towers stays valid and `reindex` re-encodes nothing",
    )
    parser.add_argument(
        "--similarity",
        choices=SIMILARITIES,
        default=None,
        help="how the towers compare vectors, trained with and saved in MODEL_DIR; an index built with them "
        "follows it (default cosine; dot and euclidean keep the vectors' length)",
    )
    parser.add_argument(
        "--negatives",
        choices=("sampled", "impressions", "mixed"),
        default=None,
        help="where each pair's negative comes from: sampled (mined and in-batch only), impressions (a click "
        "log's shown-but-skipped documents only) or mixed (one of each); default: sampled for a click log (it "
        "scored best on dev in bench.click_training), otherwise the data's own negatives first, then mined",
    )
    parser.add_argument(
        "--negative-range",
        nargs=2,
        type=int,
        metavar=("MIN", "MAX"),
        default=None,
        help="mine negatives from the miner's ranks MIN..MAX-1 (0-based; default 3 50: the top ranks often "
        "hold unjudged relevant documents)",
    )
    for name in _FLAGS:
        # --flag / --no-flag, so an option set in --config can be turned off again
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=_HELP[name],
        )
    parser.set_defaults(run=run_finetune)


def options_from_args(args) -> dict:
    """The config fields the command line sets (the recipe or ``--config`` decides the rest)."""
    names = (*_FIELD_OPTIONS, *_FLAGS, "train", "negatives", "similarity")
    changes = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.negative_range is not None:
        changes["negative_range_min"], changes["negative_range_max"] = args.negative_range
    if args.dev_split is not None:
        changes["dev_fraction"] = 0.0
    elif args.dev_fraction is not None:
        changes["dev_split"] = None
    return changes


def run_finetune(args) -> int:
    from dualsearch.finetune.config import FinetuneConfig
    from dualsearch.finetune.train import finetune

    config = FinetuneConfig.from_json(args.config) if args.config else None
    report = finetune(
        args.data, args.out, config, show_progress=True, overwrite=args.overwrite, options=options_from_args(args)
    )
    for line in report_lines(report):
        print(line)
    print(f"saved towers to {args.out}")
    return 0


def report_lines(report) -> list[str]:
    """The last lines of a run: data, time, dev before and after, what was chosen, warnings."""
    from dualsearch.finetune.selection import alphas_label

    count = report.negatives_per_pair
    negatives = f", {count} negative{'s' if count > 1 else ''} each" if count else ""
    towers = "the query tower" if report.trained_towers == "query" else "both towers"
    lines = [f"recipe: {reason}" for reason in report.recipe]
    lines.append(f"trained {towers} on {report.train_pairs} pairs{negatives} in {report.train_seconds:.0f}s")
    if report.before:
        lines.append(f"dev ({report.dev_queries} queries, {report.dev_documents} documents):")
        for label, metrics in (("before", report.before), ("after", report.after)):
            lines.append(f"  {label:<6} " + "  ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
        selection = report.selection
        label = alphas_label(selection["alphas"])
        overlap = selection["probe_overlap_by_alphas"].get(label)
        lines.append(
            f"kept alphas {label} ({selection['key']}; weight of each tuned tower against the base, grid "
            f"{selection['grid']}), documents at {selection['document_length']} tokens; probe queries keep "
            f"{overlap:.0%} of the base towers' top 10"
        )
    if report.search:
        scores = report.search["dev_ndcg_by_search"]
        lines.append(
            f"search on dev (nDCG@10 {', '.join(f'{name} {value:.4f}' for name, value in scores.items())}): "
            f"an index of these towers uses {report.search['label']} by default"
        )
    lines.extend(f"warning: {warning}" for warning in report.warnings)
    return lines
