"""IR metrics come from ir-measures; we check our plumbing against hand-computed values."""

from __future__ import annotations

import math

import pytest

from dualsearch.corpora.sources import TINY_CORPUS_DIR
from dualsearch.errors import CorpusError
from dualsearch.read.evaluation import evaluate, score_run
from dualsearch.read.searcher import Searcher


def test_score_run_matches_hand_computed_values():
    qrels = {"q1": {"a": 1}, "q2": {"b": 2, "c": 1}}
    run = {"q1": {"x": 0.9, "a": 0.8}, "q2": {"b": 0.7, "c": 0.6}}
    metrics = score_run(qrels, run)
    assert metrics["mrr@10"] == pytest.approx((1 / 2 + 1) / 2)
    assert metrics["recall@100"] == pytest.approx(1.0)
    ndcg_q1 = (1 / math.log2(3)) / 1.0
    assert metrics["ndcg@10"] == pytest.approx((ndcg_q1 + 1.0) / 2)


def test_queries_without_hits_count_as_zero():
    metrics = score_run({"q1": {"a": 1}, "q2": {"b": 1}}, {"q1": {"a": 1.0}, "q2": {}})
    assert metrics == {"ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5}


def test_evaluate_on_the_tiny_collection(tiny_index, fake_encoder):
    searcher = Searcher.open(tiny_index, encoder=fake_encoder)
    metrics = evaluate(searcher, TINY_CORPUS_DIR, "test")
    assert set(metrics) == {"ndcg@10", "recall@100", "mrr@10"}
    assert metrics["recall@100"] == 1.0  # all 26 documents come back
    assert 0.5 < metrics["ndcg@10"] <= 1.0  # word overlap finds most answers
    assert evaluate(searcher, TINY_CORPUS_DIR, "test", exact=True) == metrics  # one list: IVF is exact


def test_unknown_split_is_a_clear_error(tiny_index, fake_encoder):
    searcher = Searcher.open(tiny_index, encoder=fake_encoder)
    with pytest.raises(FileNotFoundError, match=r"no qrels for split 'dev'.*available: \['test'\]"):
        evaluate(searcher, TINY_CORPUS_DIR, "dev")


def test_judgements_of_another_collection_are_refused_not_scored_zero(tiny_index, fake_encoder, tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "green tea"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tother-collection-doc\t1\n")
    with Searcher.open(tiny_index, encoder=fake_encoder) as searcher:
        with pytest.raises(CorpusError, match="none of the 1 relevant documents judged in .* is in the index"):
            evaluate(searcher, tmp_path, "test")


def test_judged_documents_missing_from_the_index_are_warned_about(tiny_index, fake_encoder, tmp_path, caplog):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "green tea"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("q1\ttea-green\t1\nq1\tnot-indexed\t1\n")
    with Searcher.open(tiny_index, encoder=fake_encoder) as searcher:
        evaluate(searcher, tmp_path, "test")
    assert "1 of the 2 relevant documents judged" in caplog.text
