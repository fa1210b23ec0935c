"""The sentence-transformers trainer for one run: MultipleNegativesRankingLoss (or its gradient-cached
form), ``BatchSamplers.NO_DUPLICATES``, the Router mapping, periodic dev evaluation, checkpoints and
the best checkpoint loaded at the end."""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import TrainerCallback

from dualsearch.finetune.config import FinetuneConfig
from dualsearch.finetune.dataset import router_mapping
from dualsearch.towers.weights import DOCUMENT_ROUTE

logger = logging.getLogger(__name__)

BEST_METRIC = "eval_dev_ndcg@10"  # trainer prefix "eval" + evaluator name "dev" + primary metric


def make_loss(model, config: FinetuneConfig, anchors=None):
    """MultipleNegativesRankingLoss: each query's positive against every other document in the batch
    (and the pair's own hard negatives). ``gradient_cache`` swaps in the cached form (GradCache), which
    takes large batches in the memory of ``mini_batch_size``; ``anchors`` (with ``config.anchor_weight``)
    add the pull toward the base towers (:class:`~dualsearch.finetune.anchor.AnchoredLoss`).

    Example:
        >>> make_loss(model, FinetuneConfig(scale=30.0)).scale  # doctest: +SKIP
        30.0
    """
    ranking = _ranking_loss(model, config)
    if not anchors or not config.anchor_weight:
        return ranking
    from dualsearch.finetune.anchor import AnchoredLoss

    return AnchoredLoss(
        model, ranking, anchors, config.anchor_weight, config.anchor_batch_size, config.seed, config.anchor_kind
    )


def _ranking_loss(model, config: FinetuneConfig):
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    scale, similarity = config.loss_scale, loss_similarity(config.similarity)
    if config.logq:  # in-batch logits corrected by each positive's log frequency (labels)
        from dualsearch.finetune.logq import CachedLogQMultipleNegativesRankingLoss, LogQMultipleNegativesRankingLoss

        if config.gradient_cache:
            return CachedLogQMultipleNegativesRankingLoss(model, scale, config.mini_batch_size, similarity)
        return LogQMultipleNegativesRankingLoss(model, scale, similarity)
    if config.gradient_cache:
        return CachedMultipleNegativesRankingLoss(
            model, scale=scale, similarity_fct=similarity, mini_batch_size=config.mini_batch_size
        )
    return MultipleNegativesRankingLoss(model, scale=scale, similarity_fct=similarity)


def loss_similarity(similarity: str):
    """sentence-transformers' score of every query against every document for ``similarity``: cosine,
    dot product, or the negated Euclidean distance (the squared distance the index ranks by orders the
    same)."""
    from sentence_transformers.util import cos_sim, dot_score, euclidean_sim

    return {"cosine": cos_sim, "dot": dot_score, "euclidean": euclidean_sim}[similarity]


def training_arguments(
    config: FinetuneConfig,
    columns: list[str],
    checkpoint_dir: Path,
    evaluate: bool,
    show_progress: bool,
    batch_sampler=None,
):
    """Trainer arguments; evaluation and checkpoints share one schedule so the best can be kept.
    ``batch_sampler`` replaces sentence-transformers' no-duplicates sampler (see finetune.batching)."""
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    schedule = "steps" if config.evaluation_steps else "epoch"
    # adapter layers do not load back from a checkpoint: a LoRA run keeps its best evaluation in memory
    checkpoints = config.lora_rank is None
    return SentenceTransformerTrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a fraction of the steps (transformers 5)
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        bf16=config.bf16,
        # a repeated text in a batch would be a false in-batch negative
        batch_sampler=batch_sampler or BatchSamplers.NO_DUPLICATES,
        router_mapping={} if config.tied else router_mapping(columns),
        learning_rate_mapping=document_learning_rate_mapping(config),
        eval_strategy=schedule if evaluate else "no",
        eval_steps=config.evaluation_steps,
        save_strategy=schedule if checkpoints else "no",
        save_steps=config.evaluation_steps,
        save_total_limit=2 if evaluate else 1,
        load_best_model_at_end=evaluate and checkpoints,
        metric_for_best_model=BEST_METRIC if evaluate else None,
        greater_is_better=True,
        logging_steps=10,
        report_to="none",
        disable_tqdm=not show_progress,
        dataloader_num_workers=0,
        dataloader_pin_memory=_has_cuda(),
        use_cpu=not _has_cuda(),  # transformers refuses bf16 on CPU unless told it is on CPU
    )


def document_learning_rate_mapping(config: FinetuneConfig) -> dict[str, float]:
    r"""sentence-transformers' parameter-name pattern -> learning rate, for the document tower's own rate.

    Example:
        >>> document_learning_rate_mapping(FinetuneConfig(document_learning_rate=1e-5))
        {'\\.sub_modules\\.document\\.': 1e-05}
        >>> document_learning_rate_mapping(FinetuneConfig())
        {}
    """
    if config.document_learning_rate is None:
        return {}
    return {rf"\.sub_modules\.{DOCUMENT_ROUTE}\.": config.document_learning_rate}


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def make_trainer(
    model,
    dataset,
    evaluator,
    config: FinetuneConfig,
    checkpoint_dir: Path,
    show_progress: bool = False,
    batch_sampler=None,
    anchors=None,
):
    """A ``SentenceTransformerTrainer`` whose logs go to :mod:`logging` instead of stdout.

    Example:
        >>> trainer = make_trainer(model, dataset, None, FinetuneConfig(), Path("/tmp/ckpt"))  # doctest: +SKIP
        >>> trainer.train()  # doctest: +SKIP
    """
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import PrinterCallback, ProgressCallback

    args = training_arguments(
        config, dataset.column_names, checkpoint_dir, evaluator is not None, show_progress, batch_sampler
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=make_loss(model, config, anchors), evaluator=evaluator
    )
    trainer.remove_callback(PrinterCallback)  # prints every log dict when progress bars are off
    if not show_progress:
        trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_LoggingCallback())
    if config.train == "query":  # the frozen document tower encodes each document once
        from dualsearch.finetune.frozen_documents import FrozenDocumentsCallback

        trainer.add_callback(FrozenDocumentsCallback(model))
    if config.lora_rank is not None and evaluator is not None:
        from dualsearch.finetune.lora import BestAdaptersCallback

        trainer.add_callback(BestAdaptersCallback(model, BEST_METRIC))
    return trainer


class _LoggingCallback(TrainerCallback):
    """Training loss, learning rate and dev metrics to the module logger."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            shown = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in logs.items()}  # lr is ~1e-5
            logger.info("step %d/%d: %s", state.global_step, state.max_steps, shown)


def evaluation_history(trainer) -> list[dict[str, float]]:
    """The dev metrics of every evaluation during training, with step and epoch."""
    history = []
    for entry in trainer.state.log_history:
        if BEST_METRIC in entry:
            metrics = {k.removeprefix("eval_dev_"): v for k, v in entry.items() if k.startswith("eval_dev_")}
            history.append({"step": entry.get("step"), "epoch": entry.get("epoch"), **metrics})
    return history
