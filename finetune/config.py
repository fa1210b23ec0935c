"""What a fine-tuning run does: one frozen, validated config, saved as ``train_config.json`` beside the towers.

Loading a config from JSON rejects unknown keys, so a typo (``"epoch": 3``) fails loudly instead of
silently training with the default.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualsearch.errors import InvalidInputError
from dualsearch.records import record_from_json
from dualsearch.towers.similarity import SIMILARITIES

NEGATIVE_MINERS = ("bm25", "towers", "both")
TRAINED_TOWERS = ("both", "query")
ANCHOR_KINDS = ("distance", "ranking")  # what anchoring holds: each vector, or the rankings
# where each pair's negatives come from (None: the data's own first, then mined): dualsearch.finetune.clicks
NEGATIVE_SOURCES = ("sampled", "impressions", "mixed")


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of one fine-tuning run.

    Example:
        >>> config = FinetuneConfig(epochs=2, hard_negatives=1)
        >>> FinetuneConfig.from_dict(config.to_dict()) == config
        True
    """

    # --- towers
    base: str = "default"  # base checkpoint of both towers: 'default' (packaged all-MiniLM-L6-v2), a path or hub id
    tied: bool = False  # True: one shared tower, saved as a plain model; False: separate query/document weights
    max_query_length: int = 64  # query tower truncation in tokens (separate towers only)
    # document tower truncation saved with the towers (used to index); None: chosen on dev between the
    # training length and the base's own, the longer within 1% of the best (without dev: the training length;
    # a frozen document tower keeps the base's)
    max_document_length: int | None = None
    train_max_document_length: int | None = 128  # truncation while training (None: max_document_length)
    train: str = "both"  # towers to train: 'both', or 'query' (the document tower and the index stay valid)
    # --- training data
    split: str = "train"  # qrels split of a BEIR directory to train on
    corpus: str | None = None  # the documents a click log's ids refer to (any corpus form)
    min_relevance: int = 1  # judgements at or above this grade become (query, document) pairs
    max_pairs: int | None = None  # seeded subsample of the pairs (None: all of them)
    max_positives_per_query: int | None = None  # seeded cap per query, applied before max_pairs
    # --- dev evaluation (at most one of dev_split / dev_fraction)
    dev_split: str | None = None  # a qrels split of the same BEIR directory, e.g. NFCorpus 'dev'
    dev_fraction: float = 0.0  # else hold out this fraction of the training queries (seeded)
    dev_max_documents: int | None = 2000  # dev corpus: judged documents plus a seeded sample up to this many
    evaluation_steps: int | None = None  # evaluate (and checkpoint) every N steps; None: once per epoch
    # --- optimisation
    epochs: float = 1.0
    batch_size: int = 32  # pairs per step; every other pair's document is an in-batch negative
    learning_rate: float = 5e-5
    # the document tower's own peak learning rate (None: learning_rate): lower keeps it nearer its base, and
    # the document tower is the one that forgets (docs/finetune-notes.md, "Which tower forgets")
    document_learning_rate: float | None = None
    warmup_ratio: float = 0.1  # fraction of the steps with a linearly rising learning rate
    weight_decay: float = 0.01
    # how the towers compare vectors, trained with and recorded in the model directory (dualsearch.towers.similarity):
    # 'cosine' (unit vectors), 'dot' or 'euclidean' (the towers' Normalize modules are dropped)
    similarity: str = "cosine"
    # MultipleNegativesRankingLoss scale (1 / temperature); None: 20 for cosine, and for dot product and
    # Euclidean the scale giving the base towers' scores cosine's spread at 20 (dualsearch.finetune.scale)
    scale: float | None = None
    avoid_known_positives: bool = True  # no batch holds a document judged relevant to another of its queries
    gradient_cache: bool = False  # CachedMultipleNegativesRankingLoss: large batches in bounded memory
    mini_batch_size: int = 16  # forward-pass size with gradient_cache
    bf16: bool = False  # bfloat16 autocast for training and dev encoding (fast on CPUs with AMX)
    seed: int = 12
    # --- hard negatives
    hard_negatives: int = 1  # mined negatives per pair (0: in-batch negatives only, plus any given in the data)
    negative_miner: str = "bm25"  # 'bm25', 'towers' (the towers before training) or 'both'
    negative_range_min: int = 3  # skip the miner's top ranks below this (unjudged relevant documents sit there)
    negative_range_max: int = 50  # consider the miner's ranks below this
    negative_margin: float | None = 0.05  # keep a negative only if score <= positive score - margin * |positive|
    # None: the data's own negatives (a click log's impressions) first, then mined ones; 'sampled': mined
    # and in-batch only; 'impressions': the data's own only; 'mixed': one of the data's plus hard_negatives mined
    negatives: str | None = None
    logq: bool = False  # correct in-batch logits by each positive's log frequency (dualsearch.finetune.logq)
    # --- robustness
    # hold each tower near its base during training: weight of the mean squared distance between its vectors
    # of anchor texts from the corpus and the base's (0: off; dualsearch.finetune.anchor)
    anchor_weight: float = 0.0
    anchor_batch_size: int = 8  # anchor texts per tower and step
    # 'distance': each tower's vectors held near the base's; 'ranking': the base towers' rankings of
    # pseudo-queries' nearest documents held (a KL term; dualsearch.finetune.anchor)
    anchor_kind: str = "distance"
    interpolate: bool = True  # WiSE-FT: mix the tuned towers with the base, weight chosen on dev
    # train low-rank adapters of this rank on each trained tower instead of all its weights, merged after
    # training (None: full fine-tuning; dualsearch.finetune.lora); adapters usually want a higher learning rate
    lora_rank: int | None = None
    # --- output
    keep_checkpoints: bool = False  # keep <out>/checkpoints after training

    def __post_init__(self) -> None:
        _check_positive(self, "max_query_length", "batch_size", "mini_batch_size", "anchor_batch_size")
        _check_positive(
            self,
            "max_document_length",
            "train_max_document_length",
            "max_pairs",
            "max_positives_per_query",
            "dev_max_documents",
            "evaluation_steps",
            "lora_rank",
            allow_none=True,
        )
        for name in (
            "tied",
            "avoid_known_positives",
            "gradient_cache",
            "bf16",
            "interpolate",
            "keep_checkpoints",
            "logq",
        ):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.base, str) or not self.base.strip():
            raise InvalidInputError(f"base must be a model path or hub id, got {self.base!r}")
        if self.train not in TRAINED_TOWERS:
            raise InvalidInputError(f"train must be one of {list(TRAINED_TOWERS)}, got {self.train!r}")
        if self.document_learning_rate is not None and (self.tied or self.train == "query"):
            raise InvalidInputError("document_learning_rate needs a document tower of its own that is trained")
        if self.train == "query" and self.tied:
            raise InvalidInputError("train='query' needs separate towers: a tied model's one tower encodes documents")
        if self.min_relevance < 1:
            raise InvalidInputError(
                f"min_relevance must be at least 1 (0 means judged non-relevant), got {self.min_relevance}"
            )
        if self.dev_split is not None and self.dev_fraction:
            raise InvalidInputError("give dev_split or dev_fraction, not both")
        if self.dev_split == self.split:
            raise InvalidInputError(f"dev_split {self.dev_split!r} is the training split: dev queries must be held out")
        if not 0 <= self.dev_fraction < 1:
            raise InvalidInputError(f"dev_fraction must be in [0, 1), got {self.dev_fraction}")
        if self.similarity not in SIMILARITIES:
            raise InvalidInputError(f"similarity must be one of {list(SIMILARITIES)}, got {self.similarity!r}")
        for name in ("epochs", "learning_rate", "scale", "document_learning_rate"):
            value = getattr(self, name)
            if value is None and name in ("scale", "document_learning_rate"):
                continue
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InvalidInputError(f"{name} must be a positive number, got {value!r}")
        weight = self.anchor_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < math.inf:
            raise InvalidInputError(f"anchor_weight must be a number at least 0, got {self.anchor_weight!r}")
        if self.anchor_kind not in ANCHOR_KINDS:
            raise InvalidInputError(f"anchor_kind must be one of {list(ANCHOR_KINDS)}, got {self.anchor_kind!r}")
        if not 0 <= self.warmup_ratio < 1 or self.weight_decay < 0:
            raise InvalidInputError("warmup_ratio must be in [0, 1) and weight_decay at least 0")
        self._check_negatives()

    def _check_negatives(self) -> None:
        if self.hard_negatives < 0:
            raise InvalidInputError(f"hard_negatives must be at least 0, got {self.hard_negatives}")
        if self.negative_miner not in NEGATIVE_MINERS:
            raise InvalidInputError(
                f"negative_miner must be one of {list(NEGATIVE_MINERS)}, got {self.negative_miner!r}"
            )
        if not 0 <= self.negative_range_min < self.negative_range_max:
            raise InvalidInputError(
                "need 0 <= negative_range_min < negative_range_max, "
                f"got {self.negative_range_min}, {self.negative_range_max}"
            )
        if self.negatives is not None and self.negatives not in NEGATIVE_SOURCES:
            raise InvalidInputError(f"negatives must be one of {list(NEGATIVE_SOURCES)}, got {self.negatives!r}")
        if self.negative_margin is not None and not 0 <= self.negative_margin < 1:
            raise InvalidInputError(f"negative_margin must be in [0, 1), got {self.negative_margin}")

    @property
    def loss_scale(self) -> float:
        """The scale the loss multiplies scores by: ``scale``, else 20 (a training run sets ``scale`` for
        dot product and Euclidean distance from the data before the loss is made).

        Example:
            >>> FinetuneConfig().loss_scale, FinetuneConfig(similarity="dot", scale=2.0).loss_scale
            (20.0, 2.0)
        """
        return 20.0 if self.scale is None else float(self.scale)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        """Build a config from a mapping, refusing keys that are not fields (typos must not pass)."""
        if not isinstance(data, dict):
            raise InvalidInputError(f"a fine-tuning config must be a JSON object, got {type(data).__name__}")
        # its own __post_init__ checks values with the messages users know, so no type pass here
        return record_from_json(cls, data, "fine-tuning config", InvalidInputError, check_types=False)

    @classmethod
    def from_json(cls, path: str | Path) -> FinetuneConfig:
        """Read a config written by :meth:`write_json` (or by hand)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidInputError(f"fine-tuning config not found: {path}") from None
        except json.JSONDecodeError as error:
            raise InvalidInputError(f"{path}: invalid JSON ({error.msg} at line {error.lineno})") from None
        return cls.from_dict(data)

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _check_positive(config: FinetuneConfig, *names: str, allow_none: bool = False) -> None:
    for name in names:
        value = getattr(config, name)
        if value is None and allow_none:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidInputError(f"{name} must be a whole number of at least 1, got {value!r}")
