"""Anchoring: the towers pulled toward their base's vectors of corpus texts while they train."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dualsearch.corpora.sources import TINY_CORPUS_DIR
from dualsearch.errors import InvalidInputError
from dualsearch.finetune.anchor import AnchoredLoss, Anchors, encode_anchors, tower_vectors
from dualsearch.finetune.config import FinetuneConfig
from dualsearch.finetune.train import finetune
from tests.helpers import FAST_TRAINING as TRAIN_FAST

pytestmark = pytest.mark.slow  # trains, exports or starts Ray: seconds a test (make test-fast skips it)

QUERIES = ["which tea is oxidised the most", "how is green tea made", "coffee beans roasting", "rooibos origin"]
DOCUMENTS = [
    "Black tea leaves are fully oxidised before drying.",
    "Green tea is steamed or pan-fired soon after picking.",
    "Roasting turns green coffee beans brown.",
    "Rooibos grows in the Cederberg mountains of South Africa.",
]


def router_model(tiny_model_dir):
    from dualsearch.finetune.model import build_training_model

    model = build_training_model(str(tiny_model_dir))
    model.eval()  # no dropout: every forward pass of the same weights gives the same vectors
    return model


def batch(model):
    return [model.preprocess(QUERIES, task="query"), model.preprocess(DOCUMENTS, task="document")]


def gradients(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_the_anchor_term_is_the_mean_squared_distance_to_the_targets(tiny_model_dir):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = router_model(tiny_model_dir)
    queries = encode_anchors(model, "query", QUERIES, batch_size=3, bf16=False)
    documents = encode_anchors(model, "document", DOCUMENTS, batch_size=3, bf16=False)
    ranking = MultipleNegativesRankingLoss(model)
    loss = AnchoredLoss(model, ranking, [queries, documents], weight=2.0, batch_size=4)
    # unchanged weights: the towers still give their base vectors
    assert loss.anchor_term().item() == pytest.approx(0.0, abs=1e-10)

    shift = torch.zeros_like(documents.targets)
    shift[:, 0] = 0.5  # every document target moved by 0.5 along one axis: squared distance 0.25
    moved = Anchors("document", DOCUMENTS, documents.targets + shift)
    loss = AnchoredLoss(model, ranking, [queries, moved], weight=2.0, batch_size=4)
    with torch.no_grad():
        parts = loss(batch(model), None)
        expected_anchor = (0.0 + 0.25) / 2  # the mean over the two towers
        assert parts["anchor"].item() == pytest.approx(2.0 * expected_anchor, rel=1e-5)
        assert parts["ranking"].item() == pytest.approx(ranking(batch(model), None).item(), rel=1e-6)


def test_each_route_is_encoded_by_its_own_tower(tiny_model_dir):
    model = router_model(tiny_model_dir)
    with torch.no_grad():
        as_query = tower_vectors(model, "query", DOCUMENTS)
        as_document = tower_vectors(model, "document", DOCUMENTS)
        targets = encode_anchors(model, "document", DOCUMENTS, batch_size=2, bf16=False).targets
    assert not torch.allclose(as_query, as_document, atol=1e-4)  # the tiny towers differ
    torch.testing.assert_close(targets, as_document)


def test_anchors_are_taken_in_a_seeded_cycle_through_every_text(tiny_model_dir):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = router_model(tiny_model_dir)
    anchors = encode_anchors(model, "document", DOCUMENTS, batch_size=4, bf16=False)
    loss = AnchoredLoss(model, MultipleNegativesRankingLoss(model), [anchors], weight=1.0, batch_size=3)
    steps = [loss._next_rows(0) for _ in range(4)]  # 12 rows: three passes over 4 texts
    assert all(len(rows) == 3 for rows in steps)
    flat = [row for rows in steps for row in rows]
    assert sorted(flat[:4]) == sorted(flat[4:8]) == sorted(flat[8:]) == [0, 1, 2, 3]


@pytest.mark.parametrize("cached", [False, True])
def test_gradients_add_the_anchor_term_to_the_ranking_loss(tiny_model_dir, cached):
    """The gradient-cached loss runs its own backward pass from a hook: the anchor term's gradient must
    still add to it (total gradient = ranking gradient + weight * anchor gradient)."""
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    model = router_model(tiny_model_dir)
    queries = encode_anchors(model, "query", QUERIES, batch_size=4, bf16=False)
    shifted = Anchors("query", QUERIES, queries.targets + 0.1)  # a nonzero anchor gradient
    if cached:
        ranking = CachedMultipleNegativesRankingLoss(model, mini_batch_size=2)
    else:
        ranking = MultipleNegativesRankingLoss(model)

    def run(compute) -> dict[str, torch.Tensor]:
        model.zero_grad()
        compute().backward()
        return gradients(model)

    def anchored():
        return AnchoredLoss(model, ranking, [shifted], weight=3.0, batch_size=4, seed=5)

    ranking_only = run(lambda: ranking(batch(model), None))
    anchor_only = run(lambda: anchored().anchor_term())
    both = run(lambda: sum(anchored()(batch(model), None).values()))
    assert set(both) == set(ranking_only) | set(anchor_only)
    moved = 0
    for name, gradient in both.items():
        expected = ranking_only.get(name, torch.zeros_like(gradient)) + 3.0 * anchor_only.get(
            name, torch.zeros_like(gradient)
        )
        torch.testing.assert_close(gradient, expected, rtol=1e-4, atol=1e-6)
        moved += bool(anchor_only.get(name, torch.zeros(1)).abs().sum() > 0)
    assert moved > 0  # the anchor term did reach the query tower's weights


def test_bad_anchor_settings_are_refused(tiny_model_dir):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = router_model(tiny_model_dir)
    anchors = encode_anchors(model, "query", QUERIES, batch_size=4, bf16=False)
    ranking = MultipleNegativesRankingLoss(model)
    with pytest.raises(InvalidInputError, match="positive weight"):
        AnchoredLoss(model, ranking, [anchors], weight=0.0, batch_size=4)
    with pytest.raises(InvalidInputError, match="anchor texts"):
        AnchoredLoss(model, ranking, [Anchors("query", QUERIES, anchors.targets[:2])], weight=1.0, batch_size=4)
    for weight in (-1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(InvalidInputError, match="anchor_weight"):
            FinetuneConfig(anchor_weight=weight)
    with pytest.raises(InvalidInputError, match="anchor_batch_size"):
        FinetuneConfig(anchor_batch_size=0)


# the training tests' fast settings (trained weights compared, no interpolation), trained harder so
# that the free towers drift far enough for anchoring to show
FAST = TRAIN_FAST | dict(epochs=2, learning_rate=2e-3, hard_negatives=0)


def drift(out, base_dir) -> float:
    """Mean squared distance between the saved towers' vectors of the tiny corpus and the base's."""
    from dualsearch.finetune.data import load_training_data
    from dualsearch.towers.dual_encoder import DualEncoder

    data = load_training_data(str(TINY_CORPUS_DIR), split="test")
    texts = list(data.documents.values())
    trained, base = DualEncoder.load(str(out)), DualEncoder.load(str(base_dir))
    moved = [
        ((trained.encode_queries(texts) - base.encode_queries(texts)) ** 2).sum(axis=1).mean(),
        ((trained.encode_documents(texts) - base.encode_documents(texts)) ** 2).sum(axis=1).mean(),
    ]
    return float(np.mean(moved))


def test_anchored_towers_move_less_from_the_base(tmp_path, tiny_plain_model_dir):
    free = tmp_path / "free"
    held = tmp_path / "held"
    finetune(TINY_CORPUS_DIR, free, FinetuneConfig(base=str(tiny_plain_model_dir), **FAST))
    report = finetune(TINY_CORPUS_DIR, held, FinetuneConfig(base=str(tiny_plain_model_dir), anchor_weight=50.0, **FAST))
    assert FinetuneConfig.from_json(held / "train_config.json").anchor_weight == 50.0
    assert report.after  # it trained and was evaluated like any run
    assert drift(held, tiny_plain_model_dir) < 0.5 * drift(free, tiny_plain_model_dir)


def test_a_frozen_document_tower_is_not_anchored(tiny_plain_model_dir):
    from dualsearch.finetune.data import load_training_data
    from dualsearch.finetune.model import build_training_model
    from dualsearch.finetune.train import _anchors

    data = load_training_data(str(TINY_CORPUS_DIR), split="test")
    model = build_training_model(str(tiny_plain_model_dir))
    config = FinetuneConfig(anchor_weight=1.0)
    assert [a.route for a in _anchors(model, data, config, None, frozenset())] == ["query", "document"]
    assert [a.route for a in _anchors(model, data, config, None, frozenset({"document"}))] == ["query"]
    assert _anchors(model, data, FinetuneConfig(), None, frozenset()) is None
    tied = build_training_model(str(tiny_plain_model_dir), tied=True)
    assert [a.route for a in _anchors(tied, data, config, None, frozenset())] == [None, None]


def test_anchor_texts_leave_out_the_drift_probes_unless_nothing_else_is_left(caplog):
    from dualsearch.finetune.anchor import anchor_texts, opening

    documents = {f"d{i}": f"text{i} " * 30 for i in range(10)}
    probes = frozenset(opening(documents[f"d{i}"], 8) for i in range(4))
    queries, texts = anchor_texts(documents, 100, seed=3, skip=probes)
    assert len(queries) == len(texts) == 3  # the 6 documents that are not probes, split between the towers
    assert not any(opening(text, 8) in probes for text in texts)
    assert not any(query.split()[0] in {"text0", "text1", "text2", "text3"} for query in queries)
    everything = frozenset(opening(text, 8) for text in documents.values())
    queries, texts = anchor_texts(documents, 100, seed=3, skip=everything)
    assert len(queries) + len(texts) == 10 and "drift probes" in caplog.text


def ranking_anchors(model):
    return [
        encode_anchors(model, "query", QUERIES, batch_size=4, bf16=False),
        encode_anchors(model, "document", DOCUMENTS, batch_size=4, bf16=False),
    ]


def test_ranking_anchors_hold_the_order_not_the_position(tiny_model_dir):
    """The ranking term is zero for the base towers and for the base vectors turned by one rotation (cosines
    unchanged, where the distance term is not), and positive when the documents' targets change places."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = router_model(tiny_model_dir)
    ranking = MultipleNegativesRankingLoss(model)
    queries, documents = ranking_anchors(model)
    dimension = queries.targets.shape[1]
    rotation, _ = torch.linalg.qr(torch.randn(dimension, dimension, generator=torch.Generator().manual_seed(0)))
    rotated = [Anchors(a.route, a.texts, a.targets @ rotation) for a in (queries, documents)]
    swapped = Anchors("document", DOCUMENTS, documents.targets[[1, 0, 3, 2]])
    with torch.no_grad():

        def term(anchors, kind):
            return AnchoredLoss(model, ranking, anchors, weight=1.0, batch_size=4, kind=kind).anchor_term().item()

        assert term([queries, documents], "ranking") == pytest.approx(0.0, abs=1e-6)
        assert term(rotated, "ranking") == pytest.approx(0.0, abs=1e-5)
        assert term(rotated, "distance") > 0.1
        assert term([queries, swapped], "ranking") > 1e-3


def test_ranking_anchors_rank_each_pseudo_querys_nearest_documents(tiny_model_dir):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    import dualsearch.finetune.anchor as anchor

    model = router_model(tiny_model_dir)
    queries, documents = ranking_anchors(model)
    loss = AnchoredLoss(model, MultipleNegativesRankingLoss(model), [queries, documents], 1.0, 2, kind="ranking")
    scores = (
        torch.nn.functional.normalize(queries.targets, dim=-1)
        @ torch.nn.functional.normalize(documents.targets, dim=-1).T
    )
    nearest = min(anchor.RANKING_NEIGHBOURS, len(DOCUMENTS))
    assert loss._neighbours.shape == (len(QUERIES), nearest)
    for row, neighbours in enumerate(loss._neighbours.tolist()):
        assert set(neighbours) == set(scores[row].argsort(descending=True)[:nearest].tolist())
    with pytest.raises(InvalidInputError, match="pseudo-queries' and the documents'"):
        AnchoredLoss(model, MultipleNegativesRankingLoss(model), [queries], 1.0, 2, kind="ranking")
    with pytest.raises(InvalidInputError, match="anchor kind"):
        AnchoredLoss(model, MultipleNegativesRankingLoss(model), [queries], 1.0, 2, kind="angle")
    with pytest.raises(InvalidInputError, match="anchor_kind"):
        FinetuneConfig(anchor_kind="angle")


def test_ranking_anchors_take_both_sides_even_with_a_frozen_document_tower(tiny_plain_model_dir):
    from dualsearch.finetune.data import load_training_data
    from dualsearch.finetune.model import build_training_model
    from dualsearch.finetune.train import _anchors

    data = load_training_data(str(TINY_CORPUS_DIR), split="test")
    model = build_training_model(str(tiny_plain_model_dir))
    config = FinetuneConfig(anchor_weight=1.0, anchor_kind="ranking")
    assert [a.route for a in _anchors(model, data, config, None, frozenset({"document"}))] == ["query", "document"]


def rank_agreement(out, base_dir) -> float:
    """Mean Spearman correlation, over the tiny corpus's pseudo-queries (each document's opening words),
    between the saved towers' and the base towers' ranks of every document."""
    from dualsearch.finetune.anchor import opening
    from dualsearch.finetune.data import load_training_data
    from dualsearch.towers.dual_encoder import DualEncoder

    texts = list(load_training_data(str(TINY_CORPUS_DIR), split="test").documents.values())
    probes = [opening(text, 4) for text in texts]

    def ranks(encoder):
        return (encoder.encode_queries(probes) @ encoder.encode_documents(texts).T).argsort(axis=1).argsort(axis=1)

    trained, base = ranks(DualEncoder.load(str(out))), ranks(DualEncoder.load(str(base_dir)))
    return float(np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(trained, base, strict=True)]))


def test_ranking_anchored_towers_keep_the_base_rankings(tmp_path, tiny_plain_model_dir):
    free, held = tmp_path / "free", tmp_path / "held"
    finetune(TINY_CORPUS_DIR, free, FinetuneConfig(base=str(tiny_plain_model_dir), **FAST))
    config = FinetuneConfig(base=str(tiny_plain_model_dir), anchor_weight=50.0, anchor_kind="ranking", **FAST)
    report = finetune(TINY_CORPUS_DIR, held, config)
    assert FinetuneConfig.from_json(held / "train_config.json").anchor_kind == "ranking"
    assert report.after
    assert rank_agreement(held, tiny_plain_model_dir) > rank_agreement(free, tiny_plain_model_dir)
