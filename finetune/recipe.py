"""The default fine-tuning recipe: the settings our benchmark supports, adapted to the data by rules.

``dualsearch finetune DATA --out MODEL`` with no other option trains with :func:`recipe_config`.
Every rule is written here, with the measurement behind it, and returns the reason it fired, which
the run logs and saves in ``train_report.json``. Options a user gives override the recipe one by one.

The rules, each chosen on train/dev splits of SciFact and NFCorpus only; the measurements behind them
are in results/finetune_defaults.json, results/finetune_dev.json, results/finetune_length.json and
results/click_training.json, read in docs/finetune-notes.md:

- **Dev set**: a BEIR directory's ``dev`` judgements when it has them; else :data:`DEV_FRACTION` of
  the training queries, held out by seed, when that leaves at least :data:`MIN_DEV_QUERIES` dev
  queries. Without a dev set nothing can be chosen on dev: no best checkpoint, no interpolation, and
  the run says so.
- **Positives per query**: at most :data:`POSITIVES_CAP` when queries have more judged documents than
  that on average (collections judged densely, as NFCorpus is: one positive a query trained worse).
- **Epochs** by the number of pairs (:data:`EPOCH_STEPS`): small sets peak after a few epochs on dev,
  large ones are evaluated several times within one.
- **Hard negatives**: one BM25 negative per pair from ranks 3-49 within 95% of the positive's score,
  unless queries have more than :data:`POSITIVES_CAP` judged documents on average: then BM25's top
  ranks are mostly positives, mining finds no negative for most pairs, and it doubled the step time
  for a gain within one seed's noise.
- **Click logs** (:mod:`dualsearch.finetune.clicks`): sampled negatives (BM25-mined and in-batch) with
  the logQ correction, the best on dev of the six ways :mod:`bench.click_training` tried (one seed
  each, so the margin is small). Impression negatives are still used when asked for (``--negatives``).
- **Anchoring** (:mod:`dualsearch.finetune.anchor`) at weight 1 from 8,000 pairs, the one-epoch runs: a
  long run drifts furthest from the base, and the pull toward it paid there on dev and test; on the
  short runs it cost on dev, so they train without it. One seed per collection.
- **Precision**: bfloat16 autocast only where the CPU computes it natively (AMX or AVX512-BF16);
  elsewhere it is emulated and slower than float32.
- **Documents while training**: at the base's length (the length an index encodes them at) under
  :data:`FULL_LENGTH_BELOW_PAIRS` pairs, where dev preferred it; at 128 tokens from there on (the base
  model was itself trained at 128, and full length would multiply the step time of long runs). The
  length saved with the towers is chosen on dev between the training length and the base's
  (:mod:`dualsearch.finetune.selection`), as is the interpolation weight.
- **Learning rate 5e-5, batch 32** (both collections).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualsearch.finetune.config import FinetuneConfig
from dualsearch.finetune.data import TrainingData

logger = logging.getLogger(__name__)

DEV_FRACTION = 0.15
MIN_DEV_QUERIES = 20
POSITIVES_CAP = 8
EPOCH_STEPS = ((2_000, 3), (8_000, 2))  # (pairs below, epochs); more pairs: 1 epoch
FULL_LENGTH_BELOW_PAIRS = EPOCH_STEPS[0][0]  # the three-epoch runs train on documents at the base's length
EVALUATIONS_IN_ONE_EPOCH = 4
WHOLE_DEV_CORPUS = 4_000  # rank the whole corpus at dev time up to this many documents (NFCorpus's fits)
ANCHOR_FROM_PAIRS = EPOCH_STEPS[-1][0]  # the one-epoch runs, where anchoring paid on NFCorpus dev
ANCHOR_WEIGHT = 1.0
# a click log's negatives and logQ correction: the best of the six runs of bench.click_training on NFCorpus dev
CLICK_LOG_NEGATIVES, CLICK_LOG_LOGQ = "sampled", True
CLICK_LOG_REASON = (
    "a click log: best on dev of 3 negative sources, with and without logQ, on a simulated NFCorpus log "
    "(results/click_training.json)"
)


@dataclass(frozen=True)
class DataShape:
    """What the recipe looks at: each training query's number of judged documents, the corpus size,
    and whether the data has its own dev judgements."""

    positives: tuple[int, ...]  # per training query, judged documents at or above the minimum grade
    documents: int
    has_dev_split: bool
    click_log: bool = False  # the data is an interaction log (dualsearch.finetune.clicks)

    @property
    def queries(self) -> int:
        return len(self.positives)

    @property
    def positives_per_query(self) -> float:
        return sum(self.positives) / max(self.queries, 1)

    def pairs(self, cap: int | None = None, dev_fraction: float = 0.0) -> int:
        """Training pairs with at most ``cap`` per query, after holding out ``dev_fraction`` of the queries."""
        total = sum(min(count, cap) if cap else count for count in self.positives)
        return round(total * (1 - dev_fraction))

    @classmethod
    def of(cls, train: TrainingData, data: str | Path, min_relevance: int = 1, click_log: bool = False) -> DataShape:
        """The shape of ``train``; ``data`` is the directory whose ``qrels/dev.tsv`` would give a dev split."""
        positives = tuple(
            sum(1 for grade in judged.values() if grade >= min_relevance) for judged in train.qrels.values()
        )
        has_dev = (Path(data) / "qrels" / "dev.tsv").is_file()
        return cls(tuple(count for count in positives if count), len(train.documents), has_dev, click_log)


def recipe_config(
    shape: DataShape, options: Mapping[str, Any] | None = None, native_bf16: bool | None = None
) -> tuple[FinetuneConfig, list[str]]:
    """The config for data of this shape, with ``options`` (config field -> value) applied last.

    Returns the config and, for each rule that set something, the reason in words.

    Example:
        >>> scifact_like = DataShape(positives=(1,) * 700 + (2,) * 109, documents=5183, has_dev_split=False)
        >>> config, why = recipe_config(scifact_like, native_bf16=False)
        >>> config.epochs, config.dev_fraction, config.hard_negatives, config.max_positives_per_query
        (3, 0.15, 1, None)
        >>> config.train_max_document_length is None  # the base's length
        True
        >>> nfcorpus_like = DataShape(positives=(43,) * 2000, documents=3633, has_dev_split=True)
        >>> config, why = recipe_config(nfcorpus_like, native_bf16=False)
        >>> config.epochs, config.dev_split, config.hard_negatives, config.max_positives_per_query
        (1, 'dev', 0, 8)
        >>> config.evaluation_steps, config.dev_max_documents, config.anchor_weight
        (125, None, 1.0)
    """
    options = dict(options or {})
    settings: dict[str, Any] = {}
    reasons: list[str] = []

    def rule(field: str, value: Any, reason: str) -> None:
        if field not in options:
            settings[field] = value
            reasons.append(f"{field} = {value!r}: {reason}")

    _dev_rules(shape, options, rule)
    many_positives = shape.positives_per_query > POSITIVES_CAP
    if many_positives:
        rule("max_positives_per_query", POSITIVES_CAP, f"{shape.positives_per_query:.1f} judged documents a query")
    chosen = {**settings, **options}  # what is decided so far
    pairs = shape.pairs(chosen.get("max_positives_per_query"), chosen.get("dev_fraction", 0.0))
    epochs = next((epochs for below, epochs in EPOCH_STEPS if pairs < below), 1)
    rule("epochs", epochs, f"about {pairs:,} training pairs")
    if pairs < FULL_LENGTH_BELOW_PAIRS:
        reason = f"about {pairs:,} training pairs: a short run trains on documents at the length an index uses"
        rule("train_max_document_length", None, reason)
    has_dev = bool(chosen.get("dev_split") or chosen.get("dev_fraction"))
    if options.get("epochs", epochs) <= 1 and has_dev:
        steps = math.ceil(pairs / chosen.get("batch_size", FinetuneConfig.batch_size))
        every = max(1, math.ceil(steps / EVALUATIONS_IN_ONE_EPOCH))
        rule("evaluation_steps", every, f"one epoch of {steps} steps, evaluated {EVALUATIONS_IN_ONE_EPOCH} times")
    if pairs >= ANCHOR_FROM_PAIRS:
        rule("anchor_weight", ANCHOR_WEIGHT, f"{pairs:,} pairs: a long run, held near the base while it trains")
    if many_positives:
        rule("hard_negatives", 0, "BM25's top ranks are mostly judged positives when queries have this many")
    if shape.click_log:
        rule("negatives", CLICK_LOG_NEGATIVES, CLICK_LOG_REASON)
        rule("logq", CLICK_LOG_LOGQ, CLICK_LOG_REASON)
    if shape.documents <= WHOLE_DEV_CORPUS:
        rule("dev_max_documents", None, f"the whole corpus ({shape.documents:,} documents) is ranked at dev time")
    bf16 = native_bf16 if native_bf16 is not None else cpu_has_native_bf16()
    rule("bf16", bf16, "the CPU computes bfloat16 natively" if bf16 else "no native bfloat16 on this CPU")
    config = dataclasses.replace(FinetuneConfig(), **settings, **options)
    for reason in reasons:
        logger.info("recipe: %s", reason)
    return config, reasons


def _dev_rules(shape: DataShape, options: Mapping[str, Any], rule) -> None:
    if "dev_split" in options or "dev_fraction" in options:
        return
    if shape.has_dev_split and options.get("split", "train") != "dev":
        rule("dev_split", "dev", "the data has dev judgements")
    elif round(DEV_FRACTION * shape.queries) >= MIN_DEV_QUERIES:
        rule("dev_fraction", DEV_FRACTION, f"no dev split; {round(DEV_FRACTION * shape.queries)} queries held out")
    else:
        logger.warning(
            "only %d training queries: no dev set, so no checkpoint choice and no interpolation with the base "
            "towers (give --dev-fraction to force one)",
            shape.queries,
        )


def cpu_has_native_bf16() -> bool:
    """True where bfloat16 matrix products are native: CUDA with bf16, or a CPU with AMX or AVX512-BF16."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # private but stable since torch 2.3
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
