"""Training the query tower alone: the frozen document tower encodes each distinct document once."""

import torch

from dualsearch.finetune.frozen_documents import CachedTower, FrozenDocumentsCallback
from dualsearch.finetune.model import build_training_model, freeze_document_tower
from dualsearch.towers.weights import DOCUMENT_ROUTE


def _features(model, texts):
    return model.preprocess(texts, task="document")


def test_the_cached_tower_gives_the_towers_evaluation_vectors_and_encodes_each_document_once(tiny_plain_model_dir):
    model = build_training_model(str(tiny_plain_model_dir), False, 16, None, "cosine")
    freeze_document_tower(model)
    tower = model[0].sub_modules[DOCUMENT_ROUTE]
    texts = ["green tea leaves", "black coffee beans", "green tea leaves", "a longer document about oolong tea"]
    model.eval()
    with torch.no_grad():
        expected = model(dict(_features(model, texts)))["sentence_embedding"]
    cached = CachedTower(tower)
    model.train()  # training mode: dropout would change the documents' vectors; the cache encodes in eval mode
    first = cached(dict(_features(model, texts)))["sentence_embedding"]
    assert cached.encoded == 3  # the repeated document once
    assert torch.allclose(first, expected, atol=1e-5)
    again = cached(dict(_features(model, ["black coffee beans", "green tea leaves"])))["sentence_embedding"]
    assert cached.encoded == 3 and torch.allclose(again, expected[[1, 0]], atol=1e-5)
    assert tower.training  # the tower's own mode is left as it was


def test_the_callback_puts_the_cache_in_for_a_step_and_the_plain_tower_back_after_it(tiny_plain_model_dir):
    model = build_training_model(str(tiny_plain_model_dir), False, 16, None, "cosine")
    freeze_document_tower(model)
    plain = model[0].sub_modules[DOCUMENT_ROUTE]
    callback = FrozenDocumentsCallback(model)
    callback.on_step_begin(None, None, None)
    assert isinstance(model[0].sub_modules[DOCUMENT_ROUTE][0], CachedTower)
    callback.on_step_end(None, None, None)
    assert model[0].sub_modules[DOCUMENT_ROUTE] is plain  # evaluation and checkpoints see the plain tower
