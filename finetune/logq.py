"""Sampling-bias correction of in-batch negatives (logQ; Yi et al., RecSys 2019, "Sampling-Bias-Corrected
Neural Modeling for Large Corpus Item Recommendations").

In-batch negatives are the other rows' positives, so a document that is a positive often (a popular
one, in a click log) is a negative often too, and the towers learn to push it down for every query.
Yi et al. subtract from each in-batch logit the log of the document's sampling probability:
``s_c(q_i, d_j) = s(q_i, d_j) - log(p_j)``, where ``p_j`` is how often ``d_j`` appears as a positive in
the training stream. They estimate ``p_j`` online with hashed arrays because a recommender's stream is
unbounded; a training set here is a finite list of pairs, so exact counts over it are both possible
and exact: ``p_j = positives of d_j / pairs`` (:func:`dualsearch.finetune.sampling.log_frequencies`).

Each training row carries the log-probability of its own positive in a ``label`` column (the trainer
passes it to the loss as ``labels``); the loss subtracts it from that document's column of the
similarity matrix for every query of the batch, the positive's own logit included, as the paper does.
Hard negatives (mined or from impressions) are not drawn in proportion to popularity and keep their
logits as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from sentence_transformers.sentence_transformer.losses import (
    CachedMultipleNegativesRankingLoss,
    MultipleNegativesRankingLoss,
)
from sentence_transformers.util import cos_sim

from dualsearch.finetune.dataset import LABEL_COLUMN


class CorrectedSimilarity:
    """The towers' similarity (cosine unless given) with the first ``len(log_frequencies)`` columns (the
    batch's positives) lowered by ``log(p_j) / scale``, so that after the loss multiplies by ``scale``
    each logit is ``s - log(p_j)``."""

    def __init__(self, scale: float, similarity=cos_sim) -> None:
        self.scale, self.similarity = scale, similarity
        self.log_frequencies: torch.Tensor | None = None  # (batch,), set per batch by the loss

    def __call__(self, queries: torch.Tensor, documents: torch.Tensor) -> torch.Tensor:
        scores = self.similarity(queries, documents)
        if self.log_frequencies is None:
            return scores
        batch = len(self.log_frequencies)
        correction = torch.zeros(scores.shape[1], dtype=scores.dtype, device=scores.device)
        correction[:batch] = self.log_frequencies.to(scores.dtype) / self.scale
        return scores - correction

    @property
    def __name__(self) -> str:  # sentence-transformers names the similarity in the model card
        return f"{getattr(self.similarity, '__name__', 'similarity')}_logq"


class _LogQ:
    """Stores each batch's ``labels`` (log-probabilities) in the similarity before the loss runs."""

    def forward(self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: torch.Tensor) -> torch.Tensor:
        if labels is None:
            raise ValueError(f"logQ correction needs each row's log-probability in a {LABEL_COLUMN!r} column")
        self.similarity_fct.log_frequencies = labels.float()
        try:
            return super().forward(sentence_features, labels)
        finally:
            self.similarity_fct.log_frequencies = None


class LogQMultipleNegativesRankingLoss(_LogQ, MultipleNegativesRankingLoss):
    """MultipleNegativesRankingLoss with logQ-corrected in-batch logits."""

    def __init__(self, model, scale: float = 20.0, similarity=cos_sim) -> None:
        super().__init__(model, scale=scale, similarity_fct=CorrectedSimilarity(scale, similarity))


class CachedLogQMultipleNegativesRankingLoss(_LogQ, CachedMultipleNegativesRankingLoss):
    """The gradient-cached form (large batches in bounded memory) with logQ-corrected in-batch logits."""

    def __init__(self, model, scale: float = 20.0, mini_batch_size: int = 32, similarity=cos_sim) -> None:
        corrected = CorrectedSimilarity(scale, similarity)
        super().__init__(model, scale=scale, similarity_fct=corrected, mini_batch_size=mini_batch_size)
