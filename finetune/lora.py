"""Low-rank adapters on the trained towers (LoRA, Hu et al. 2021), merged back into plain weights.

With ``lora_rank`` set, each trained tower keeps its weights frozen and learns ``W + (alpha / r) · B·A``
for every linear layer of its transformer (peft's ``all-linear``), with ``A`` and ``B`` of rank ``r``
(``B`` starts at zero, so training starts from the base exactly). A low-rank change moves a tower less
than full fine-tuning does (Biderman et al. 2024, "LoRA Learns Less and Forgets Less"), which is the
point here: towers tuned on one collection keep more of what they knew elsewhere.

peft's ``inject_adapter_in_model`` wraps each tower's own transformer, not the Router: sentence-transformers'
``add_adapter`` reaches only the first transformer of a model, and the two towers need one each. After
training, :func:`merge_adapters` folds each adapter into its layer and puts the plain layer back, so
the saved towers are ordinary weights (same names and shapes as the base): interpolation with the
base, hashing, ONNX export and indexing see no difference.

Checkpoints would hold adapter layers that sentence-transformers cannot load back into a plain model,
so a LoRA run keeps its best evaluation in memory instead (:class:`BestAdaptersCallback`).
"""

from __future__ import annotations

import logging

import torch
from transformers import TrainerCallback

from dualsearch.errors import ModelError

logger = logging.getLogger(__name__)

ADAPTER_NAME = "default"


def add_adapters(model, rank: int, routes: frozenset[str] | None = None) -> int:
    """Give every tower of ``model`` (those in ``routes``; None: all) LoRA adapters of rank ``rank`` on
    its transformer's linear layers, freezing the rest of it. Returns the adapters' parameter count."""
    from peft import LoraConfig, inject_adapter_in_model

    from dualsearch.finetune.interpolate import towers_of

    trainable = 0
    for route, tower in towers_of(model).items():
        if routes is not None and route not in routes:
            continue
        transformer = _transformer(tower, route)
        config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules="all-linear", bias="none")
        inject_adapter_in_model(config, transformer.auto_model, adapter_name=ADAPTER_NAME)
        for name, parameter in transformer.auto_model.named_parameters():
            parameter.requires_grad_("lora_" in name)
            trainable += parameter.numel() if "lora_" in name else 0
    logger.info("LoRA rank %d: %s adapter weights to train", rank, f"{trainable:,}")
    return trainable


def merge_adapters(model) -> int:
    """Fold every adapter into its layer and put the plain layer back (in place); returns how many
    layers were merged. The towers' trainable flags are restored (frozen towers stay frozen: a
    tower without adapters is left untouched)."""
    from peft.tuners.lora import LoraLayer

    from dualsearch.finetune.interpolate import towers_of

    merged = 0
    for tower in towers_of(model).values():
        adapted = [(name, module) for name, module in tower.named_modules() if isinstance(module, LoraLayer)]
        if not adapted:
            continue
        for name, module in adapted:
            module.merge(safe_merge=True, adapter_names=[ADAPTER_NAME])
            parent_name, _, child = name.rpartition(".")
            setattr(tower.get_submodule(parent_name) if parent_name else tower, child, module.get_base_layer())
            merged += 1
        for parameter in tower.parameters():
            parameter.requires_grad_(True)
    return merged


def adapter_state(model) -> dict[str, torch.Tensor]:
    """A detached copy of the adapters' weights (what a LoRA run trains)."""
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items() if "lora_" in name}


class BestAdaptersCallback(TrainerCallback):
    """Keep the adapters of the best evaluation so far, and put them back when training ends (what
    ``load_best_model_at_end`` does from checkpoints for full fine-tuning)."""

    def __init__(self, model, metric: str) -> None:
        self.model, self.metric = model, metric
        self.best: tuple[float, int, dict[str, torch.Tensor]] | None = None

    @property
    def best_step(self) -> int | None:
        return self.best[1] if self.best is not None else None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(f"eval_{self.metric}", (metrics or {}).get(self.metric))
        if value is not None and (self.best is None or value > self.best[0]):
            self.best = (float(value), state.global_step, adapter_state(self.model))

    def on_train_end(self, args, state, control, **kwargs):
        if self.best is not None:
            unexpected = self.model.load_state_dict(self.best[2], strict=False).unexpected_keys
            if unexpected:
                raise ModelError(f"could not restore the best adapters: {unexpected[:3]}")
            logger.info("kept the adapters of step %d (%s %.4f)", self.best[1], self.metric, self.best[0])


def _transformer(tower, route: str):
    first = tower[0] if len(tower) else None
    if first is None or not hasattr(first, "auto_model"):
        raise ModelError(f"the {route} tower does not start with a transformer: LoRA needs one")
    return first
