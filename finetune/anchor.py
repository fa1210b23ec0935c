"""Holding the towers near where they started while they train ("anchoring", a distillation to the base).

Fine-tuned towers forget: trained on NFCorpus, all-MiniLM-L6-v2 loses nDCG@10 on SciFact even after
weight interpolation (results/finetune_defaults.json) (:mod:`dualsearch.finetune.interpolate`), which can only trade
the whole of what was learned against the whole of what was forgotten, after the fact. Anchoring acts
during training instead. Each step, a few *anchor texts* from the user's own corpus are encoded by the
training towers and pulled toward the vectors the base towers gave the same texts before training:

    loss = ranking loss + weight * mean over anchors of ||tower(x) - base(x)||^2

The query tower is anchored on pseudo-queries (the opening words of random documents), the document
tower on random documents, so each tower may move where the training pairs pull it and is held where
nothing does. This is the idea of "Learning without Forgetting" (Li and Hoiem, ECCV 2016) with the
squared-distance distillation sentence-transformers' ``MSELoss`` uses to keep a student beside its
teacher (Reimers and Gurevych, EMNLP 2020); the base's vectors are computed once, so a step costs one
extra forward and backward pass over ``batch_size`` short texts per tower.

``kind="ranking"`` holds the towers' *rankings* instead of their vectors: each step, a few pseudo-queries
and, for each, its nearest anchor documents under the base towers are scored by the training towers, and
the KL divergence from the base towers' softmax over the same scores joins the loss (the listwise
distillation of RocketQAv2, Ren et al., EMNLP 2021, with the base towers as the teacher). The towers may
move and rotate together as long as they keep ordering the corpus as the base did.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dualsearch.errors import InvalidInputError
from dualsearch.finetune.config import ANCHOR_KINDS

logger = logging.getLogger(__name__)

ANCHOR_WORDS = 12  # words of a pseudo-query: as many as the nprobe calibration's pseudo-queries
ANCHOR_TEXTS = 2048  # anchor texts per tower: sixty-odd steps of 32 before one repeats
RANKING_NEIGHBOURS = 4  # anchor documents ranked per pseudo-query: its nearest ones under the base towers
RANKING_SCALE = 20.0  # cosine scores times this before the softmax: MultipleNegativesRankingLoss's scale


@dataclass
class Anchors:
    """Texts one tower is held on, and the base tower's vectors of them (rows in the same order)."""

    route: str | None  # the Router route that encodes them ('query' / 'document'), None for a tied model
    texts: list[str]
    targets: torch.Tensor  # (len(texts), dimension), float32, no gradient


def anchor_texts(documents: dict[str, str], count: int, seed: int, skip: frozenset[str] = frozenset()):
    """Pseudo-queries and documents to anchor the query and the document tower on: ``count`` seeded random
    documents each (the two sets drawn apart), leaving out documents whose opening words are one of
    ``skip`` (the probe queries that measure drift after training must not have been trained on).

    Example:
        >>> docs = {f"d{i}": f"word{i} " * 20 for i in range(6)}
        >>> queries, texts = anchor_texts(docs, 2, seed=1, skip=frozenset({opening(docs["d0"], 8)}))
        >>> len(queries), len(texts), len(set(queries) | {opening(t) for t in texts})
        (2, 2, 4)
        >>> any(q.startswith("word0 ") for q in queries + texts)
        False
    """
    skip_lengths = sorted({len(text.split()) for text in skip})
    ids = sorted(documents)
    random.Random(seed).shuffle(ids)
    texts = [documents[i] for i in ids if documents[i].strip()]
    chosen = [t for t in texts if not any(opening(t, length) in skip for length in skip_lengths)][: 2 * count]
    if len(chosen) < 2:  # a corpus the probes cover whole: anchor on them too rather than on nothing
        logger.warning("anchor texts include the drift probes: the corpus has no other text (%d)", len(texts))
        chosen = texts[: 2 * count]
    half = len(chosen) // 2
    return [opening(text) for text in chosen[:half]], chosen[half:]


def opening(text: str, words: int = ANCHOR_WORDS) -> str:
    """The first ``words`` words of ``text``, single-spaced.

    Example:
        >>> opening("a  b\\nc d", 3)
        'a b c'
    """
    return " ".join(text.split()[:words])


def encode_anchors(model, route: str | None, texts: list[str], batch_size: int, bf16: bool) -> Anchors:
    """The base tower's vectors of ``texts``, computed by the same forward pass training will run (so the
    anchor term starts near zero; dropout and autocast make it not exactly zero)."""
    from dualsearch.finetune.evaluator import bf16_autocast

    was_training = model.training
    model.eval()
    rows = []
    try:
        with torch.no_grad(), bf16_autocast(bf16):
            for start in range(0, len(texts), batch_size):
                rows.append(tower_vectors(model, route, texts[start : start + batch_size]).float())
    finally:
        model.train(was_training)
    return Anchors(route, list(texts), torch.cat(rows) if rows else torch.empty(0))


def tower_vectors(model, route: str | None, texts: list[str]) -> torch.Tensor:
    """``texts`` through one tower of ``model`` with gradients (the route's tokenizer and length)."""
    features = model.preprocess(texts, task=route) if route else model.preprocess(texts)
    device = model.device
    features = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
    return model(features)["sentence_embedding"]


class AnchoredLoss(nn.Module):
    """``ranking_loss`` plus ``weight`` times an anchor term over a few anchor texts a step, taken in a
    seeded order, ``batch_size`` per tower and step, and cycled.

    ``kind="distance"``: the mean squared distance between each anchored tower's current vectors of its
    anchor texts and its base's (:class:`Anchors`, one per anchored tower). ``kind="ranking"``: ``anchors``
    are the pseudo-queries' and the documents' (in that order, both towers, frozen or not); each of
    ``batch_size`` pseudo-queries ranks the union of every one's :data:`RANKING_NEIGHBOURS` nearest anchor
    documents, and the term is the KL divergence of the training towers' softmax over those scores from
    the base towers'.

    It returns both parts by name (the trainer sums them and logs each); it passes ``labels`` through, so
    it wraps the logQ-corrected losses as well, and it works with the gradient-cached loss: that loss runs
    its own backward pass from a hook on the value it returns, and the anchor term's gradient adds to it.
    """

    def __init__(
        self,
        model,
        ranking_loss: nn.Module,
        anchors: list[Anchors],
        weight: float,
        batch_size: int,
        seed=12,
        kind: str = "distance",
    ):
        super().__init__()
        if weight <= 0 or batch_size < 1:
            raise InvalidInputError(f"anchoring needs a positive weight and batch size, got {weight}, {batch_size}")
        if not anchors or any(len(a.texts) == 0 or len(a.texts) != len(a.targets) for a in anchors):
            raise InvalidInputError("anchoring needs anchor texts, each with its base vector")
        if kind not in ANCHOR_KINDS:
            raise InvalidInputError(f"anchor kind must be one of {list(ANCHOR_KINDS)}, got {kind!r}")
        if kind == "ranking" and len(anchors) != 2:
            raise InvalidInputError("ranking anchors need the pseudo-queries' and the documents' anchors")
        self.model, self.ranking_loss, self.kind = model, ranking_loss, kind
        self.anchors, self.weight, self.batch_size = anchors, weight, batch_size
        self._random = random.Random(seed)
        self._orders: list[list[int]] = [[] for _ in anchors]
        if kind == "ranking":
            queries, documents = (a.targets.float() for a in anchors)
            nearest = min(RANKING_NEIGHBOURS, len(documents))
            self._neighbours = _cosine(queries, documents).topk(nearest, dim=1).indices

    def forward(self, sentence_features, labels) -> dict[str, torch.Tensor]:
        return {"ranking": self.ranking_loss(sentence_features, labels), "anchor": self.weight * self.anchor_term()}

    def anchor_term(self) -> torch.Tensor:
        return self._ranking_term() if self.kind == "ranking" else self._distance_term()

    def _distance_term(self) -> torch.Tensor:
        """Mean squared distance to the base's vectors over the next anchor texts of every anchored tower."""
        terms = []
        for position, anchors in enumerate(self.anchors):
            rows = self._next_rows(position)
            vectors = tower_vectors(self.model, anchors.route, [anchors.texts[row] for row in rows]).float()
            targets = anchors.targets[rows].to(vectors.device)
            terms.append(((vectors - targets) ** 2).sum(dim=1).mean())
        return torch.stack(terms).mean()

    def _ranking_term(self) -> torch.Tensor:
        """KL(base || training towers) of the next pseudo-queries' softmax over their nearest documents."""
        queries, documents = self.anchors
        rows = self._next_rows(0)
        columns = sorted({int(column) for row in rows for column in self._neighbours[row]})
        query_vectors = tower_vectors(self.model, queries.route, [queries.texts[row] for row in rows])
        document_vectors = tower_vectors(self.model, documents.route, [documents.texts[c] for c in columns])
        device = query_vectors.device
        student = _cosine(query_vectors.float(), document_vectors.float())
        teacher = _cosine(queries.targets[rows].to(device), documents.targets[columns].to(device))
        return F.kl_div(
            F.log_softmax(RANKING_SCALE * student, dim=1),
            F.log_softmax(RANKING_SCALE * teacher, dim=1),
            log_target=True,
            reduction="batchmean",
        )

    def _next_rows(self, position: int) -> list[int]:
        order = self._orders[position]
        if len(order) < self.batch_size:  # a fresh seeded pass over the texts after what is left of this one
            fresh = list(range(len(self.anchors[position].texts)))
            self._random.shuffle(fresh)
            order.extend(fresh)
        rows, self._orders[position] = order[: self.batch_size], order[self.batch_size :]
        return rows

    @property
    def citation(self) -> str:  # the model card lists each loss's citation
        return getattr(self.ranking_loss, "citation", "")

    def get_config_dict(self) -> dict:
        return {
            "ranking_loss": type(self.ranking_loss).__name__,
            "kind": self.kind,
            "weight": self.weight,
            "batch_size": self.batch_size,
        }


def _cosine(queries: torch.Tensor, documents: torch.Tensor) -> torch.Tensor:
    return F.normalize(queries, dim=-1) @ F.normalize(documents, dim=-1).T
