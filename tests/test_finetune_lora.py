"""LoRA adapters: one set per trained tower, a start at the base exactly, a low-rank change merged back
into plain weights, the best evaluation kept without checkpoints, and a whole run with them."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from dualsearch.corpora.sources import TINY_CORPUS_DIR
from dualsearch.finetune.config import FinetuneConfig
from dualsearch.finetune.interpolate import snapshot, towers_of
from dualsearch.finetune.lora import BestAdaptersCallback, adapter_state, add_adapters, merge_adapters
from dualsearch.finetune.train import finetune

TEXTS = ["green tea is unfermented", "espresso is brewed under pressure"]


@pytest.fixture
def router(tiny_plain_model_dir):
    from dualsearch.finetune.model import build_training_model

    return build_training_model(str(tiny_plain_model_dir))


def encoded(model) -> dict[str, np.ndarray]:
    with torch.no_grad():
        return {"query": model.encode_query(TEXTS), "document": model.encode_document(TEXTS)}


def nudge_adapters(model, seed: int = 0) -> None:
    """What training does to adapters: B leaves zero (A is random from the start)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(0.05 * torch.randn(parameter.shape, generator=generator))


def test_each_trained_tower_gets_its_own_adapters_and_only_they_train(router):
    before = encoded(router)
    count = add_adapters(router, rank=2, routes=frozenset({"query", "document"}))
    trainable = {name for name, parameter in router.named_parameters() if parameter.requires_grad}
    assert count > 0 and trainable and all("lora_" in name for name in trainable)
    assert {route for route in ("query", "document") if any(f".{route}." in name for name in trainable)} == {
        "query",
        "document",
    }
    after = encoded(router)  # B starts at zero: the adapted towers are the base exactly
    assert all(np.allclose(before[side], after[side], atol=1e-6) for side in before)


def test_a_frozen_tower_gets_no_adapters(router):
    add_adapters(router, rank=2, routes=frozenset({"query"}))
    names = [name for name, _ in towers_of(router)["document"].named_parameters()]
    assert names and not any("lora_" in name for name in names)


def test_merging_gives_plain_weights_that_encode_as_the_adapted_towers_did(router):
    base = snapshot(router)
    add_adapters(router, rank=2)
    nudge_adapters(router)
    adapted = encoded(router)
    assert merge_adapters(router) > 0
    merged = snapshot(router)
    assert {route: set(state) for route, state in merged.items()} == {
        route: set(state) for route, state in base.items()
    }
    assert all(parameter.requires_grad for parameter in router.parameters())
    after = encoded(router)
    assert all(np.allclose(adapted[side], after[side], atol=1e-5) for side in adapted)
    # the change is low rank: each merged weight moved by at most rank 2
    name = next(n for n in base["query"] if n.endswith("attention.self.query.weight"))
    change = merged["query"][name] - base["query"][name]
    assert change.abs().max() > 0 and torch.linalg.matrix_rank(change) <= 2


def test_the_best_evaluation_is_kept_in_memory_and_put_back(router):
    add_adapters(router, rank=2)
    keeper = BestAdaptersCallback(router, "eval_dev_ndcg@10")
    state = type("State", (), {"global_step": 0})()
    for step, score, seed in ((5, 0.4, 1), (10, 0.6, 2), (15, 0.5, 3)):
        nudge_adapters(router, seed)
        state.global_step = step
        keeper.on_evaluate(None, state, None, metrics={"eval_dev_ndcg@10": score})
        if step == 10:
            best = adapter_state(router)
    keeper.on_train_end(None, state, None)
    assert keeper.best_step == 10
    assert all(torch.equal(tensor, best[name]) for name, tensor in adapter_state(router).items())


@pytest.mark.slow
def test_a_lora_run_saves_plain_towers_and_a_frozen_document_tower_bit_equal(tmp_path, tiny_plain_model_dir):
    from dualsearch.towers.weights import load_sentence_transformer

    options = dict(split="test", epochs=1, batch_size=4, learning_rate=1e-3, warmup_ratio=0.0, max_query_length=32)
    config = FinetuneConfig(
        base=str(tiny_plain_model_dir),
        dev_fraction=0.25,
        seed=1,
        lora_rank=2,
        train="query",
        keep_checkpoints=True,
        **options,
    )
    report = finetune(TINY_CORPUS_DIR, tmp_path / "model", config)
    saved, base = (
        load_sentence_transformer(str(tmp_path / "model")),
        load_sentence_transformer(str(tiny_plain_model_dir)),
    )
    base_state = base[0].state_dict()
    towers = towers_of(saved)
    document, query = towers["document"][0].state_dict(), towers["query"][0].state_dict()
    assert set(query) == set(base_state) and all(torch.equal(document[name], base_state[name]) for name in base_state)
    assert report.best_checkpoint is not None and report.best_checkpoint.startswith("checkpoint-")
    assert not list((tmp_path / "model").glob("checkpoints/checkpoint-*"))  # kept in memory, never written


def test_a_lora_rank_below_one_is_refused():
    from dualsearch.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="lora_rank"):
        FinetuneConfig(lora_rank=0)


def test_without_peft_a_lora_run_stops_before_writing_and_names_the_extra(tmp_path, monkeypatch, tiny_plain_model_dir):
    from dualsearch.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "peft", None)  # import peft raises ImportError
    config = FinetuneConfig(base=str(tiny_plain_model_dir), split="test", lora_rank=2)
    with pytest.raises(MissingDependencyError, match=r"dualsearch\[finetune\]"):
        finetune(TINY_CORPUS_DIR, tmp_path / "model", config)
    assert not list(tmp_path.iterdir())
