"""The benchmark scripts' small helpers (never their timings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.common import percentile_ms, write_result
from bench.reindex import changed_copy, synthetic_corpus
from bench.scale import DIMENSION, queries_like, synthetic_vectors


def test_percentile_ms():
    assert percentile_ms([0.001, 0.002, 0.003, 0.004], 50) == pytest.approx(2.5)
    assert percentile_ms([0.010] * 9 + [1.0], 95) > 10
    with pytest.raises(ValueError):
        percentile_ms([], 50)


def test_write_result_records_command_machine_versions_and_date(tmp_path):
    path = write_result("unit", {"value": 1}, results_dir=tmp_path)
    record = json.loads(path.read_text())
    assert record["value"] == 1 and record["machine"]["cores"] >= 1
    assert {"command", "date", "library_versions"} <= set(record) and "faiss-cpu" in record["library_versions"]


def test_changed_copy_changes_the_asked_fraction(tmp_path):
    rows = [{"_id": str(i), "text": f"text {i}"} for i in range(200)]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert changed_copy(tmp_path / "c.jsonl", tmp_path / "d.jsonl", 0.05) == 10
    after = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert sum(a != b for a, b in zip(rows, after)) == 10 and len(after) == 200


def test_synthetic_corpus_and_vectors_are_seeded(tmp_path):
    synthetic_corpus(tmp_path / "a.jsonl", 50)
    synthetic_corpus(tmp_path / "b.jsonl", 50)
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    vectors = synthetic_vectors(tmp_path / "v.f32", 1000, block=300)
    assert vectors.shape == (1000, DIMENSION)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    queries = queries_like(vectors, 20)
    assert (
        queries.shape == (20, DIMENSION)
        and 0.5 < float(np.median(np.max(queries @ np.asarray(vectors).T, axis=1))) < 1.0
    )


def test_superseded_fine_tuning_rows_are_renamed_once_and_only_for_the_rerun_systems():
    from bench.finetune import mark_superseded

    runs = [
        {"collection": "nfcorpus", "system": "fine-tuned tied"},
        {"collection": "scifact", "system": "fine-tuned tied"},
        {"collection": "nfcorpus", "system": "bm25 (bm25s)"},
    ]
    mark_superseded(runs, ["nfcorpus"], ["fine-tuned tied"])
    mark_superseded(runs, ["nfcorpus"], ["fine-tuned tied"])  # a second rerun must not rename it again
    assert [r["system"] for r in runs] == [
        "fine-tuned tied, earlier settings (superseded)",
        "fine-tuned tied",
        "bm25 (bm25s)",
    ]
    assert runs[0]["superseded"] and "superseded" not in runs[1]


def test_dev_trial_overrides_are_json_values():
    from bench.finetune_dev import parse_overrides

    assert parse_overrides(["epochs=1", "tied=true", "max_pairs=null", 'negative_miner="bm25"']) == {
        "epochs": 1,
        "tied": True,
        "max_pairs": None,
        "negative_miner": "bm25",
    }
    with pytest.raises(SystemExit, match="quote strings"):
        parse_overrides(["negative_miner=bm25"])
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        parse_overrides(["epochs"])


def test_the_defaults_table_shows_each_run_as_a_user_types_it_with_its_targets():
    from bench.finetune_defaults import finetune_command, render_table

    assert finetune_command(Path("data/nfcorpus"), Path("m"), ["--train", "query"])[2:] == [
        "dualsearch",
        "finetune",
        "data/nfcorpus",
        "--out",
        "m",
        "--train",
        "query",
    ]
    report = {
        "before": {"ndcg@10": 0.30},
        "after": {"ndcg@10": 0.33},
        "selection": {
            "alphas": {"query": 0.5, "document": 0.25},
            "document_length": 128,
            "probe_overlap_by_alphas": {"0.5/0.25": 0.76},
        },
        "search": {"label": "hybrid-0.7"},
    }
    results = {
        "commands": ["python -m bench.finetune_defaults"],
        "runs": {"nfcorpus": {"wall_seconds": 600, "report": report, "test": {"nfcorpus": {"ndcg@10": 0.3311}}}},
        "zero_shot": {"scifact": {"ndcg@10": 0.6451}, "nfcorpus": {"ndcg@10": 0.3159}},
    }
    table = render_table(results)
    assert "| zero-shot all-MiniLM-L6-v2 | | | 256 | | 100% | | 0.6451 | 0.3159 |" in table
    row = "| `dualsearch finetune nfcorpus --out MODEL` | 10.0 min | 0.5/0.25 | 128 | 0.3000 → 0.3300 | 76% | "
    row += "hybrid-0.7 | "
    row += "not run | "
    assert row + "0.3311 (target ≥ 0.335) |" in table


def test_simulated_clicks_follow_examination_by_rank_and_relevance():
    from collections import Counter

    from bench.click_log import CLICK_IF_RELEVANT, NOISE_CLICK, simulate, statistics

    log = simulate({"q": ["a", "b", "c", "d"]}, {"q": {"a", "d"}}, {"q": "text"}, 8000, seed=1)
    share = {d: n / len(log) for d, n in Counter(d for record in log for d in record["clicked"]).items()}
    assert abs(share["a"] - CLICK_IF_RELEVANT) < 0.02  # rank 1 is always examined
    assert abs(share["d"] - CLICK_IF_RELEVANT / 4) < 0.02  # rank 4 is examined a quarter of the time
    assert abs(share.get("b", 0.0) - NOISE_CLICK / 2) < 0.01  # not relevant: only noise clicks
    stats = statistics(log)
    assert stats["records"] == 8000 and stats["distinct_queries"] == 1 and stats["distinct_clicked_documents"] <= 4


def test_cold_start_queries_are_those_whose_relevant_documents_were_never_clicked(tmp_path):
    from bench.click_training import clicked_documents, cold_start_queries

    log = tmp_path / "log.jsonl"
    records = [{"query": "x", "shown": ["a", "b"], "clicked": ["a"]}, {"query": "y", "shown": ["b"], "clicked": []}]
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    clicked = clicked_documents(log)
    assert clicked == {"a"}
    qrels = {"q1": {"a": 1}, "q2": {"b": 2, "a": 0}, "q3": {"c": 1, "a": 1}}  # a judged 0 is not relevant
    assert cold_start_queries(qrels, clicked) == {"q2"}


def test_an_existing_click_log_is_described_with_its_hash_without_simulating_again(tmp_path):
    import hashlib

    from bench.click_log import describe

    log = tmp_path / "log.jsonl"
    records = [
        {"query": "x", "shown": ["a", "b"], "clicked": ["a", "b"]},
        {"query": "y", "shown": ["b"], "clicked": []},
    ]
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    assert describe(log, results_dir=tmp_path) == 0
    described = json.loads((tmp_path / "click_log.json").read_text())
    assert described["log_sha256"] == hashlib.sha256(log.read_bytes()).hexdigest()
    assert described["statistics"]["records"] == 2 and described["statistics"]["clicks"] == 2


def test_a_click_training_run_counts_only_on_the_log_it_was_trained_on():
    from datetime import UTC, datetime

    from bench.click_training import made_on_log

    written = datetime(2026, 12, 3, 22, 27, 3, tzinfo=UTC)
    assert made_on_log({"log_sha256": "ab"}, "ab", written)
    assert not made_on_log({"log_sha256": "cd"}, "ab", written)
    # recorded before runs carried the hash: only a run trained after the log file was written can have used it
    assert made_on_log({"report": {"created": "2026-12-03T22:41:00Z"}}, "ab", written)
    assert not made_on_log({"report": {"created": "2026-12-03T21:38:49Z"}}, "ab", written)
    assert not made_on_log({}, "ab", written)


def test_the_dev_choice_takes_the_best_dev_score_and_the_first_of_ties():
    from bench.common import best_on_dev

    def run(score):
        return {"report": {"after": {"ndcg@10": score}}}

    runs = {"sampled": run(0.31), "impressions": run(0.33), "mixed": run(0.33)}
    assert best_on_dev(runs) == "impressions"
