"""Choosing each tower's interpolation weight on dev: the grid scorer encodes each tower setting once
and scores every cell as a full evaluation would, and the rule keeps the least-moved towers."""

from __future__ import annotations

import pytest
import torch

from dualsearch.corpora.sources import TINY_CORPUS_DIR
from dualsearch.finetune.config import FinetuneConfig
from dualsearch.finetune.interpolate import interpolate, snapshot
from dualsearch.finetune.selection import choose_alphas, choose_document_length, grid_cells, score_grid


@pytest.fixture
def dev_evaluator():
    from dualsearch.finetune.evaluator import RetrievalEvaluator
    from dualsearch.finetune.train import load_splits

    _, dev = load_splits(TINY_CORPUS_DIR, FinetuneConfig(split="test", dev_fraction=0.5, seed=1))
    return RetrievalEvaluator(dev, dev.documents, probes=["a probe about nothing", "another probe"])


def perturbed(states, scale=0.05, seed=3):
    generator = torch.Generator().manual_seed(seed)
    return {
        route: {
            name: t + scale * torch.randn(t.shape, generator=generator) if t.is_floating_point() else t
            for name, t in state.items()
        }
        for route, state in states.items()
    }


def test_the_grid_encodes_each_tower_setting_once_and_scores_like_a_full_evaluation(
    tiny_plain_model_dir, dev_evaluator
):
    from dualsearch.finetune.model import build_training_model

    model = build_training_model(str(tiny_plain_model_dir))
    base = snapshot(model)
    tuned = perturbed(base)
    cells = grid_cells(["query", "document"], [0.0, 0.5, 1.0])
    calls = {"queries": 0, "documents": 0}
    encode_queries, encode_documents = dev_evaluator.encode_queries, dev_evaluator.encode_documents

    def counting(kind, encode):
        def wrapped(model):
            calls[kind] += 1
            return encode(model)

        return wrapped

    dev_evaluator.encode_queries = counting("queries", encode_queries)
    dev_evaluator.encode_documents = counting("documents", encode_documents)
    results = score_grid(model, dev_evaluator, (base, tuned), cells, frozenset())
    assert calls == {"queries": 3, "documents": 3}  # 9 cells at the cost of 3 settings per tower
    assert set(results) == set(cells)
    for label in ("0.0/1.0", "1.0/0.5"):
        interpolate(model, base, tuned, cells[label], frozenset())
        assert dev_evaluator(model)["dev_ndcg@10"] == pytest.approx(results[label][0]["dev_ndcg@10"], abs=1e-6)
        assert dev_evaluator.probe_rankings == results[label][1]
    outer = results["0.0/0.0"][1]
    assert results["1.0/1.0"][1] != outer or results["0.0/1.0"][1] != outer  # perturbed towers rank differently


def test_a_query_tower_trained_alone_is_a_one_dimensional_grid(tiny_plain_model_dir, dev_evaluator):
    from dualsearch.finetune.model import build_training_model

    model = build_training_model(str(tiny_plain_model_dir))
    base = snapshot(model)
    tuned = perturbed(base)
    tuned["document"] = base["document"]
    cells = grid_cells(["query"], [0.0, 1.0])
    results = score_grid(model, dev_evaluator, (base, tuned), cells, frozenset({"document"}))
    assert set(results) == {"0.0", "1.0"}


def test_the_rule_keeps_the_least_moved_document_tower_then_query_tower():
    cells = grid_cells(["query", "document"], [0.0, 0.5, 1.0])
    scores = dict.fromkeys(cells, 0.5)
    scores.update({"1.0/1.0": 0.70, "0.5/1.0": 0.695, "1.0/0.5": 0.694, "0.5/0.5": 0.60})
    assert choose_alphas(scores, cells) == "1.0/0.5"  # within 1% of the best, document tower moved least
    scores["1.0/0.5"] = 0.69  # now 1.4% below the best
    assert choose_alphas(scores, cells) == "0.5/1.0"
    assert choose_alphas({"0.0/0.0": 0.5, "1.0/1.0": 0.5}, cells) == "0.0/0.0"  # no gain: the base towers


def test_the_rule_keeps_the_longest_document_length_within_the_tolerance():
    assert choose_document_length({128: 0.3288, 256: 0.3266}) == 256  # 0.7% below the best: the longer
    assert choose_document_length({128: 0.3300, 256: 0.3250}) == 128  # 1.5% below: the better one
    assert choose_document_length({256: 0.408, 128: 0.41, 512: 0.39}) == 256
    assert choose_document_length({200: 0.1}) == 200
