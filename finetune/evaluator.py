"""Dev evaluation during training: nDCG@10, Recall@100 and MRR@10 of the towers, by exact search.

The metrics come from :func:`dualsearch.read.evaluation.score_run` (ir-measures, graded judgements), the same
code that scores a built index, so dev numbers and test numbers mean the same thing.
"""

from __future__ import annotations

import contextlib
import logging
import time

import numpy as np
from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from dualsearch.finetune.data import TrainingData
from dualsearch.read.evaluation import RUN_DEPTH, score_run
from dualsearch.towers.similarity import normalises, score_matrix

logger = logging.getLogger(__name__)

PROBE_DEPTH = 10


class RetrievalEvaluator(SentenceEvaluator):
    """Ranks ``documents`` for each query of ``dev`` with the model's towers and scores the ranking.

    Returns ``{"<name>_ndcg@10", "<name>_recall@100", "<name>_mrr@10"}``; the primary metric (used to
    keep the best checkpoint) is nDCG@10.

    Example:
        >>> from dualsearch.finetune.data import load_training_data
        >>> dev = load_training_data("tiny", split="test")
        >>> evaluator = RetrievalEvaluator(dev, dev.documents)
        >>> sorted(evaluator(model))  # doctest: +SKIP
        ['dev_mrr@10', 'dev_ndcg@10', 'dev_recall@100']
    """

    def __init__(
        self,
        dev: TrainingData,
        documents: dict[str, str],
        name: str = "dev",
        batch_size: int = 32,
        bf16: bool = False,
        show_progress: bool = False,
        probes: list[str] | None = None,
        similarity: str = "cosine",
    ) -> None:
        super().__init__()
        self.similarity = similarity  # the towers' (dualsearch.towers.similarity): dev ranks as the index will
        self.query_ids = sorted(dev.qrels)
        self.queries = [dev.queries[q] for q in self.query_ids]
        self.document_ids = list(documents)
        self.documents = [documents[d] for d in self.document_ids]
        self.qrels = {q: dict(dev.qrels[q]) for q in self.query_ids}
        self.name, self.batch_size, self.bf16, self.show_progress = name, batch_size, bf16, show_progress
        self.probes = list(probes or [])  # queries unlike the dev ones: how far rankings move elsewhere
        self.probe_rankings: list[list[str]] = []  # top PROBE_DEPTH document ids of each probe, last call
        self.primary_metric = "ndcg@10"
        self.greater_is_better = True

    def __call__(self, model, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> dict[str, float]:
        started = time.perf_counter()
        metrics = score_run(self.qrels, self.run(model))
        logger.info(
            "dev evaluation (%d queries, %d documents, step %s): %s in %.1fs",
            len(self.query_ids),
            len(self.document_ids),
            steps,
            _format(metrics),
            time.perf_counter() - started,
        )
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def run(self, model) -> dict[str, dict[str, float]]:
        """Top-100 documents of each query: {query id: {document id: score}}."""
        return self.rank(self.encode_queries(model), self.encode_documents(model))

    def encode_queries(self, model) -> np.ndarray:
        """The query tower's vectors of the dev queries, then of the probes."""
        with bf16_autocast(self.bf16):
            vectors = model.encode_query(
                self.queries + self.probes,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=normalises(self.similarity),
                show_progress_bar=False,
            )
        return vectors.astype(np.float32)

    def encode_documents(self, model) -> np.ndarray:
        """The document tower's vectors of the dev corpus."""
        with bf16_autocast(self.bf16):
            vectors = model.encode_document(
                self.documents,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=normalises(self.similarity),
                show_progress_bar=self.show_progress,
            )
        return vectors.astype(np.float32)

    def score(self, query_vectors: np.ndarray, document_vectors: np.ndarray) -> dict[str, float]:
        """Prefixed metrics of already encoded towers (sets :attr:`probe_rankings`), so a grid of tower
        weights encodes each tower's setting once rather than once per pair."""
        return self.prefix_name_to_metrics(score_run(self.qrels, self.rank(query_vectors, document_vectors)), self.name)

    def rank(self, query_vectors: np.ndarray, document_vectors: np.ndarray) -> dict[str, dict[str, float]]:
        scores = score_matrix(query_vectors, document_vectors, self.similarity)  # (n_queries + n_probes, n_documents)
        depth = min(RUN_DEPTH, len(self.document_ids))
        top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
        self.probe_rankings = [[self.document_ids[j] for j in row[:PROBE_DEPTH]] for row in top[len(self.queries) :]]
        return {q: {self.document_ids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(self.query_ids)}

    def get_config_dict(self) -> dict[str, int]:
        return {"queries": len(self.query_ids), "documents": len(self.document_ids)}


def bf16_autocast(bf16: bool):
    """bfloat16 autocast on CPU when ``bf16``, else a no-op context."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def _format(metrics: dict[str, float]) -> str:
    return "  ".join(f"{name} {value:.4f}" for name, value in metrics.items())
