"""Click logs as training data, and the logQ sampling-bias correction of in-batch negatives."""

from __future__ import annotations

import json
import math

import pytest
import torch

from dualsearch.corpora.sources import TINY_CORPUS_DIR
from dualsearch.errors import InvalidInputError, TrainingDataError
from dualsearch.finetune.clicks import click_records_to_data, is_click_log
from dualsearch.finetune.config import FinetuneConfig
from dualsearch.finetune.data import load_training_data
from dualsearch.finetune.train import read_training_data

DOCUMENTS = {name: f"text of {name}" for name in "abcdefg"}


def rows(*records):
    return [(f"log:{i}", record) for i, record in enumerate(records, start=1)]


def test_clicks_are_positives_and_only_what_was_passed_over_above_the_lowest_click_is_a_negative():
    data, report = click_records_to_data(
        rows({"query": "q", "shown": ["a", "b", "c", "d", "e"], "clicked": ["b", "d"]}), DOCUMENTS, "log"
    )
    assert data.qrels == {"q0": {"b": 1, "d": 1}}
    # a and c were examined (above the click on d) and skipped; e, below the last click, says nothing
    assert data.negatives == {("q0", "b"): ("a", "c"), ("q0", "d"): ("a", "c")}
    assert (report.records, report.used, report.clicks, report.impression_negatives) == (1, 1, 2, 4)


def test_a_document_opened_in_another_record_of_the_query_is_not_its_negative():
    data, _ = click_records_to_data(
        rows(
            {"query": "q", "shown": ["a", "b"], "clicked": ["b"]},  # a passed over here ...
            {"query": "q", "shown": ["a", "c"], "clicked": ["a"], "time": "2026-11-22T10:00:00Z"},  # ... opened here
        ),
        DOCUMENTS,
        "log",
    )
    assert data.qrels == {"q0": {"b": 1, "a": 1}} and data.negatives == {}


def test_unusable_records_are_counted_by_reason_and_a_log_with_none_usable_is_refused():
    records = rows(
        {"query": "q1", "shown": ["a", "b"], "clicked": []},
        {"query": "q2", "shown": ["a", "b"], "clicked": ["c"]},
        {"query": "q3", "shown": ["a", "zzz"], "clicked": ["a"]},
        {"query": "q4", "shown": ["a", "b"], "clicked": ["b"]},
    )
    data, report = click_records_to_data(records, DOCUMENTS, "log")
    assert dict(report.set_aside) == {"no click": 1, "click not in shown": 1, "unknown document id": 1}
    assert report.used == 1 and list(data.queries.values()) == ["q4"]
    assert "set aside: 1 click not in shown, 1 no click, 1 unknown document id" in report.summary()
    with pytest.raises(TrainingDataError, match="no usable record"):
        click_records_to_data(records[:3], DOCUMENTS, "log")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"query": "q", "shown": ["a"], "clicked": ["a"], "user": "u1"}, "unknown fields"),
        ({"query": " ", "shown": ["a"], "clicked": ["a"]}, "empty query"),
        ({"query": "\u200b\u2060", "shown": ["a"], "clicked": ["a"]}, "empty query"),
        ({"query": "lone \ud800 surrogate query", "shown": ["a"], "clicked": ["a"]}, "the query is not valid Unicode"),
        ({"query": "q", "shown": "a", "clicked": ["a"]}, "'shown' must be a list"),
        ({"query": "q", "shown": ["a"], "clicked": [1]}, "'clicked' must be a list"),
    ],
)
def test_malformed_records_name_their_line(record, message):
    with pytest.raises(TrainingDataError, match=f"log:1: .*{message}"):
        click_records_to_data(rows(record), DOCUMENTS, "log")


def test_l5_a_click_log_query_with_a_lone_surrogate_is_refused_at_once_naming_the_line(tmp_path):
    log = tmp_path / "log.jsonl"
    fine = json.dumps({"query": "black tea", "shown": ["tea-black"], "clicked": ["tea-black"]})
    log.write_text(fine + '\n{"query": "lone \\ud800 surrogate query", "shown": ["tea-black"], "clicked": []}\n')
    with pytest.raises(TrainingDataError, match=r"log\.jsonl:2: the query is not valid Unicode"):
        read_training_data(log, corpus=TINY_CORPUS_DIR)


def test_a_click_log_file_is_recognised_and_needs_its_corpus(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"query": "black tea", "shown": ["tea-green", "tea-black"], "clicked": ["tea-black"]}))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"query": "black tea", "document": "Black tea is oxidised."}))
    assert is_click_log(log) and not is_click_log(pairs)
    with pytest.raises(TrainingDataError, match="--corpus"):
        read_training_data(log)
    data = read_training_data(log, corpus=TINY_CORPUS_DIR)
    assert data.qrels == {"q0": {"tea-black": 1}} and data.negatives == {("q0", "tea-black"): ("tea-green",)}
    assert data.documents["tea-black"].startswith("Black tea")


# --- logQ


def hand_computed_loss(queries, documents, log_p, scale):
    """-mean(logit_ii - logsumexp_j logit_ij), logit_ij = scale * cos(q_i, d_j) - log p_j for the batch's
    positives (the first len(log_p) documents) and scale * cos for the hard negatives after them."""
    total = 0.0
    for i, query in enumerate(queries):
        logits = []
        for j, document in enumerate(documents):
            cosine = float(torch.dot(query, document) / (query.norm() * document.norm()))
            logits.append(scale * cosine - (log_p[j] if j < len(log_p) else 0.0))
        total += math.log(sum(math.exp(x) for x in logits)) - logits[i]
    return total / len(queries)


@pytest.fixture(scope="module")
def tiny_model(tiny_encoder):
    return tiny_encoder.model


def test_log_frequencies_are_each_positives_share_of_the_rows():
    from dualsearch.finetune.sampling import log_frequencies

    assert log_frequencies(["a", "b", "a", "a"]) == pytest.approx(
        [math.log(3 / 4), math.log(1 / 4)] + [math.log(3 / 4)] * 2
    )


def test_the_corrected_logits_match_a_hand_computation(tiny_model):
    from dualsearch.finetune.logq import LogQMultipleNegativesRankingLoss

    generator = torch.Generator().manual_seed(0)
    queries, positives, negatives = (torch.randn(3, 8, generator=generator) for _ in range(3))
    log_p = torch.tensor([math.log(0.5), math.log(0.25), math.log(0.25)])
    loss = LogQMultipleNegativesRankingLoss(tiny_model, scale=20.0)
    loss.similarity_fct.log_frequencies = log_p
    value = float(loss.compute_loss_from_embeddings([queries, positives, negatives], None))
    expected = hand_computed_loss(queries, torch.cat([positives, negatives]), log_p.tolist(), 20.0)
    assert value == pytest.approx(expected, rel=1e-5)
    loss.similarity_fct.log_frequencies = None  # uncorrected: a different loss
    assert float(loss.compute_loss_from_embeddings([queries, positives, negatives], None)) != pytest.approx(value)


def test_equal_frequencies_without_hard_negatives_change_nothing(tiny_model):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from dualsearch.finetune.logq import LogQMultipleNegativesRankingLoss

    generator = torch.Generator().manual_seed(1)
    queries, positives = torch.randn(4, 8, generator=generator), torch.randn(4, 8, generator=generator)
    corrected = LogQMultipleNegativesRankingLoss(tiny_model)
    corrected.similarity_fct.log_frequencies = torch.full((4,), math.log(0.25))  # a constant shift of every logit
    plain = MultipleNegativesRankingLoss(tiny_model)
    assert float(corrected.compute_loss_from_embeddings([queries, positives], None)) == pytest.approx(
        float(plain.compute_loss_from_embeddings([queries, positives], None)), rel=1e-6
    )


def test_the_cached_form_computes_the_same_corrected_loss(tiny_model):
    from dualsearch.finetune.logq import CachedLogQMultipleNegativesRankingLoss, LogQMultipleNegativesRankingLoss

    generator = torch.Generator().manual_seed(2)
    queries, positives, negatives = (torch.randn(4, 8, generator=generator) for _ in range(3))
    log_p = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1]))
    plain, cached = (
        LogQMultipleNegativesRankingLoss(tiny_model),
        CachedLogQMultipleNegativesRankingLoss(tiny_model, 20.0, 2),
    )
    plain.similarity_fct.log_frequencies = cached.similarity_fct.log_frequencies = log_p
    expected = float(plain.compute_loss_from_embeddings([queries, positives, negatives], None))
    mini_batches = [[column[:2], column[2:]] for column in (queries, positives, negatives)]
    assert float(cached.calculate_loss(mini_batches, None)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_training_on_a_click_log_with_impressions_and_logq_saves_towers(tmp_path, tiny_plain_model_dir):
    from dualsearch.finetune.train import finetune

    test_queries = load_training_data("tiny", split="test")
    records = []
    for query_id, judged in sorted(test_queries.qrels.items()):
        best = max(judged, key=judged.get)
        others = [d for d in test_queries.documents if d not in judged][:3]
        records.append({"query": test_queries.queries[query_id], "shown": [*others, best], "clicked": [best]})
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    config = FinetuneConfig(
        base=str(tiny_plain_model_dir),
        corpus=str(TINY_CORPUS_DIR),
        negatives="impressions",
        logq=True,
        epochs=1,
        batch_size=4,
        max_query_length=32,
        max_document_length=64,
        interpolate=False,
    )
    report = finetune(log, tmp_path / "model", config)
    assert report.train_pairs == len(records) and report.negatives_per_pair == 1
    saved = json.loads((tmp_path / "model" / "train_config.json").read_text())
    assert saved["logq"] is True and saved["negatives"] == "impressions"


def test_a_click_log_takes_its_dev_judgements_from_its_corpus_leaving_out_queries_it_trained_on(tmp_path):
    from dualsearch.finetune.recipe import DataShape
    from dualsearch.finetune.train import judgements_dir, load_splits, read_training_data

    judged = load_training_data("tiny", split="test")
    trained_on = sorted(judged.qrels)[:6]
    records = [
        {"query": judged.queries[q], "shown": sorted(judged.qrels[q]), "clicked": sorted(judged.qrels[q])[:1]}
        for q in trained_on
    ]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    config = FinetuneConfig(corpus=str(TINY_CORPUS_DIR), dev_split="test")
    train, dev = load_splits(log, config)
    assert len(train.qrels) == 6
    assert set(dev.qrels) == set(judged.qrels) - set(trained_on)  # the log's own queries are not dev
    assert (
        judgements_dir(log, TINY_CORPUS_DIR) == TINY_CORPUS_DIR
        and judgements_dir(TINY_CORPUS_DIR, None) == TINY_CORPUS_DIR
    )
    assert not DataShape.of(
        read_training_data(log, corpus=TINY_CORPUS_DIR), judgements_dir(log, TINY_CORPUS_DIR)
    ).has_dev_split
    corpus_file = FinetuneConfig(corpus=str(TINY_CORPUS_DIR / "corpus.jsonl"), dev_split="test")  # no judgements
    with pytest.raises(InvalidInputError, match="a click log's --corpus"):
        load_splits(log, corpus_file, train)


class _RecipeCalled(Exception):
    pass


@pytest.mark.parametrize("is_log", [True, False])
def test_the_recipe_is_told_whether_the_data_is_a_click_log(tmp_path, monkeypatch, is_log):
    from dualsearch.finetune import recipe
    from dualsearch.finetune.train import finetune

    shapes = []

    def capture(shape, options):
        shapes.append(shape)
        raise _RecipeCalled

    monkeypatch.setattr(recipe, "recipe_config", capture)
    judged = load_training_data("tiny", split="test")
    query = sorted(judged.qrels)[0]
    log = tmp_path / "log.jsonl"
    record = {"query": judged.queries[query], "shown": ["tea-black"], "clicked": ["tea-black"]}
    log.write_text(json.dumps(record) + "\n")
    with pytest.raises(_RecipeCalled):
        if is_log:
            finetune(log, tmp_path / "model", options={"corpus": str(TINY_CORPUS_DIR)})
        else:
            finetune(TINY_CORPUS_DIR, tmp_path / "model", options={"split": "test"})
    assert [shape.click_log for shape in shapes] == [is_log]
