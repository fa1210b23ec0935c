"""Training the query tower alone: the frozen document tower encodes each distinct document once.

With ``--train query`` the document tower's weights never change, so the vector of a document is the
same at every step. Encoding the batch's positives and negatives again at every step was most of a
step's time (64 documents of 128 tokens through MiniLM in training mode, against 32 short queries),
and most of it repeats: the same few hundred documents answer most questions. :class:`CachedTower`
stands in for the document tower during each training step only (:class:`FrozenDocumentsCallback`
puts it in at a step's start and takes it out at its end, so evaluation, checkpoints and saving see
the plain tower) and encodes a document it has not seen in evaluation mode, without a graph. Those
are the vectors an index built by the same tower holds; the tower in training mode would have added
dropout noise to the documents, which nothing learns from when the tower is frozen.
"""

from __future__ import annotations

import torch
from transformers import TrainerCallback

from dualsearch.towers.weights import DOCUMENT_ROUTE

ROUTER_KWARGS = ("task", "modality")


class CachedTower(torch.nn.Module):
    """A frozen tower's modules behind a cache of sentence vectors keyed by each input's token ids."""

    forward_kwargs = set(ROUTER_KWARGS)

    def __init__(self, tower: torch.nn.Sequential) -> None:
        super().__init__()
        self.tower = tower
        self.vectors: dict[bytes, torch.Tensor] = {}
        self.encoded = 0  # how many inputs went through the tower (the rest came from the cache)

    def forward(self, features: dict, **kwargs) -> dict:
        ids, mask = features["input_ids"], features["attention_mask"]
        keys = [ids[row, : int(mask[row].sum())].cpu().numpy().tobytes() for row in range(ids.shape[0])]
        first_rows: dict[bytes, int] = {}  # a document twice in a batch is encoded once
        for row, key in enumerate(keys):
            if key not in self.vectors:
                first_rows.setdefault(key, row)
        if first_rows:
            self._encode(features, keys, list(first_rows.values()), kwargs)
        return {**features, "sentence_embedding": torch.stack([self.vectors[key] for key in keys])}

    def _encode(self, features: dict, keys: list[bytes], rows: list[int], kwargs: dict) -> None:
        batch = features["input_ids"].shape[0]
        index = torch.tensor(rows)
        part = {
            name: value[index] if isinstance(value, torch.Tensor) and value.shape[:1] == (batch,) else value
            for name, value in features.items()
        }
        training = self.tower.training
        self.tower.eval()
        try:
            with torch.no_grad():
                for module in self.tower:
                    accepted = getattr(module, "forward_kwargs", ())
                    part = module(part, **{key: value for key, value in kwargs.items() if key in accepted})
        finally:
            self.tower.train(training)
        for row, vector in zip(rows, part["sentence_embedding"]):
            self.vectors[keys[row]] = vector
        self.encoded += len(rows)


class FrozenDocumentsCallback(TrainerCallback):
    """Puts a :class:`CachedTower` in place of the model's frozen document tower for each training step."""

    def __init__(self, model) -> None:
        self.routes = model[0].sub_modules
        self.tower = self.routes[DOCUMENT_ROUTE]
        self.cached = torch.nn.Sequential(CachedTower(self.tower))

    def on_step_begin(self, args, state, control, **kwargs):
        self.routes[DOCUMENT_ROUTE] = self.cached

    def on_step_end(self, args, state, control, **kwargs):
        self.restore()

    def on_train_end(self, args, state, control, **kwargs):
        self.restore()

    def restore(self) -> None:
        self.routes[DOCUMENT_ROUTE] = self.tower
