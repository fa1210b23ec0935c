"""Training data: BEIR pairs, JSONL / Hugging Face pair records, refusals of bad data, seeded sampling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dualsearch.corpora.sources import TINY_CORPUS_DIR
from dualsearch.errors import CorpusError, CorpusNotFoundError, TrainingDataError
from dualsearch.finetune.data import load_pair_records, load_training_data
from dualsearch.finetune.dataset import build_dataset, router_mapping
from dualsearch.finetune.sampling import dev_corpus, hold_out, select_pairs


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_beir(directory: Path, qrels: str, queries: list[dict] | None = None) -> Path:
    (directory / "qrels").mkdir(parents=True)
    write_jsonl(
        directory / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Tea", "text": "Green tea."},
            {"_id": "d2", "title": "", "text": "Espresso is coffee."},
        ],
    )
    write_jsonl(
        directory / "queries.jsonl",
        queries or [{"_id": "q1", "text": "tea", "metadata": {}}, {"_id": "q2", "text": "coffee", "metadata": {}}],
    )
    (directory / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\r\n" + qrels, encoding="utf-8")
    return directory


def test_beir_pairs_are_every_positive_judgement_with_title_and_text():
    data = load_training_data(TINY_CORPUS_DIR, split="test")
    assert len(data.queries) == 16 and sum(map(len, data.qrels.values())) == 18
    assert data.qrels["q1"] == {"tea-black": 2, "tea-green": 1}
    assert data.documents["tea-green"].startswith("Green tea Green tea is made")  # title + " " + text
    assert len(data.documents) == 26
    # the title is kept apart too, for an index of these documents (every passage starts with it)
    assert data.titles["tea-green"] == "Green tea" and data.body("tea-green").startswith("Green tea is made")
    assert data.subset(["q1"]).titles == data.titles


def test_beir_never_reads_query_metadata(tmp_path):
    answers = {"_id": "q1", "text": "tea", "metadata": {"leak": "d1"}}
    data = load_training_data(write_beir(tmp_path / "b", "q1\td1\t1\r\n", [answers]), split="train")
    assert data.queries == {"q1": "tea"}


def test_beir_zero_grade_queries_are_skipped_and_unknown_ids_refused(tmp_path):
    data = load_training_data(write_beir(tmp_path / "ok", "q1\td1\t1\nq2\td2\t0\n"), split="train")
    assert list(data.qrels) == ["q1"]
    with pytest.raises(TrainingDataError, match=r"split train: 1 judged documents are not in corpus.jsonl.*'d9'"):
        load_training_data(write_beir(tmp_path / "doc", "q1\td9\t1\n"), split="train")
    with pytest.raises(TrainingDataError, match=r"1 judged queries are not in queries.jsonl.*'q7'"):
        load_training_data(write_beir(tmp_path / "query", "q7\td1\t1\n"), split="train")
    with pytest.raises(TrainingDataError, match="no usable pairs"):
        load_training_data(write_beir(tmp_path / "none", "q1\td1\t0\n"), split="train")
    with pytest.raises(CorpusNotFoundError, match="no qrels for split 'dev'"):
        load_training_data(tmp_path / "ok", split="dev")


def test_jsonl_pairs_get_ids_and_negatives(tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"query": "tea?", "document": "Tea is a drink.", "negative": "Coffee is a drink."},
            {"query": "tea?", "document": "Green tea.", "negative": ["Coffee is a drink.", "Bread."]},
            {"query": "coffee?", "document": "Coffee is a drink."},
        ],
    )
    data = load_training_data(path)
    assert data.queries == {"q0": "tea?", "q1": "coffee?"}
    assert data.qrels == {"q0": {"d0": 1, "d2": 1}, "q1": {"d1": 1}}
    assert data.negatives[("q0", "d2")] == ("d1", "d3")
    assert data.documents["d3"] == "Bread."


@pytest.mark.parametrize(
    "row, message",
    [
        ({"query": "tea?"}, r"pairs.jsonl:1: query 'tea\?' has no positive \(field 'document'\)"),
        ({"query": " ", "document": "x"}, r"pairs.jsonl:1: empty query: ' ' shows no text"),
        ({"query": "\u200b\u2060", "document": "x"}, r"pairs.jsonl:1: empty query: '\\u200b\\u2060' shows no text"),
        ({"query": "lone \ud800 q", "document": "x"}, r"pairs.jsonl:1: the query is not valid Unicode"),
        ({"document": "x"}, r"pairs.jsonl:1: the query must be a string, got NoneType"),
        ({"query": "tea?", "document": "bad \udc80"}, r"pairs.jsonl:1: query 'tea\?': the 'document' is not valid"),
        ({"query": "tea?", "document": "x", "negative": "bad \ud800"}, r"pairs.jsonl:1: .*a 'negative' is not valid"),
        ({"query": "tea?", "document": ""}, "empty 'document'"),
        ({"query": "tea?", "document": "x", "negative": ["y", ""]}, "'negative' must be a non-empty text"),
        ({"query": "tea?", "document": "x", "negative": "x"}, "same text as the 'document'"),
        ({"anchor": "tea?", "positive": "x"}, r"unknown fields \['anchor', 'positive'\]; expected 'query', 'document'"),
    ],
)
def test_bad_pair_records_are_refused_naming_file_and_line(tmp_path, row, message):
    path = write_jsonl(tmp_path / "pairs.jsonl", [row])
    with pytest.raises(TrainingDataError, match=message) as raised:
        load_training_data(path)
    assert isinstance(raised.value, CorpusError)


def test_l5_a_query_with_a_lone_surrogate_or_only_zero_width_characters_is_refused_at_once(tmp_path):
    """Before, both passed the check and the first failed after about 10 s inside pyarrow."""
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b'{"query": "fine", "document": "x"}\n{"query": "lone \\ud800 q", "document": "y"}\n')
    with pytest.raises(TrainingDataError, match=r"pairs\.jsonl:2: the query is not valid Unicode \(a lone surrogate"):
        load_training_data(path)
    path.write_text(json.dumps({"query": "\u200b\u200c\u200d", "document": "y"}) + "\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match=r"pairs\.jsonl:1: empty query"):
        load_training_data(path)


def test_l5_beir_queries_follow_the_same_rule(tmp_path):
    queries = [{"_id": "q1", "text": "tea \ud800"}, {"_id": "q2", "text": "coffee"}]
    beir = write_beir(tmp_path / "beir", "q1\td1\t1\r\nq2\td2\t1\r\n", queries)
    with pytest.raises(CorpusError, match=r"queries\.jsonl:1: query q1: the query is not valid Unicode"):
        load_training_data(beir)


def test_negative_that_is_a_positive_of_the_same_query_is_refused():
    rows = [("r:1", {"query": "q", "document": "a", "negative": "b"}), ("r:2", {"query": "q", "document": "b"})]
    with pytest.raises(TrainingDataError, match="r: 1 negatives are also positives of the same query"):
        load_pair_records(rows, "r")


def test_empty_source_and_unknown_format_are_refused(tmp_path):
    with pytest.raises(TrainingDataError, match=r"empty.jsonl: no usable pairs"):
        load_training_data(write_jsonl(tmp_path / "empty.jsonl", []))
    (tmp_path / "pairs.txt").write_text("x")
    with pytest.raises(TrainingDataError, match="cannot tell the format of training data"):
        load_training_data(tmp_path / "pairs.txt")
    with pytest.raises(CorpusNotFoundError, match="training data not found"):
        load_training_data(tmp_path / "absent.jsonl")


def test_saved_hugging_face_dataset_of_pairs(tmp_path):
    from datasets import Dataset, DatasetDict

    rows = {"query": ["tea?", "coffee?"], "document": ["Tea.", "Coffee."], "negative": ["Coffee.", "Tea."]}
    DatasetDict({"train": Dataset.from_dict(rows)}).save_to_disk(str(tmp_path / "hf"))
    data = load_training_data(tmp_path / "hf", split="train")
    assert sorted(data.queries.values()) == ["coffee?", "tea?"] and len(data.negatives) == 2
    with pytest.raises(CorpusError, match=r"no split 'dev'; available: \['train'\]"):
        load_training_data(tmp_path / "hf", split="dev")


def test_pair_selection_is_seeded_and_respects_grade_and_caps():
    data = load_training_data(TINY_CORPUS_DIR, split="test")
    assert len(select_pairs(data)) == 18
    assert all(data.qrels[q][d] >= 2 for q, d in select_pairs(data, min_relevance=2))
    capped = select_pairs(data, max_positives_per_query=1, max_pairs=10, seed=3)
    assert len(capped) == 10 and len({q for q, _ in capped}) == 10
    assert capped == select_pairs(data, max_positives_per_query=1, max_pairs=10, seed=3)
    with pytest.raises(TrainingDataError, match="no usable pairs with relevance >= 3"):
        select_pairs(data, min_relevance=3)


def test_hold_out_splits_queries_without_overlap_and_dev_corpus_keeps_judged_documents():
    data = load_training_data(TINY_CORPUS_DIR, split="test")
    train, dev = hold_out(data, 0.25, seed=5)
    assert len(dev.qrels) == 4 and not set(train.qrels) & set(dev.qrels)
    assert hold_out(data, 0.25, seed=5)[1].qrels == dev.qrels
    corpus = dev_corpus(dev, max_documents=8, seed=1)
    assert len(corpus) == 8 and {d for docs in dev.qrels.values() for d in docs} <= set(corpus)
    with pytest.raises(TrainingDataError, match="cannot hold out"):
        hold_out(data, 0.99)


def test_dataset_columns_and_router_mapping():
    data = load_training_data(TINY_CORPUS_DIR, split="test")
    pairs = [("q1", "tea-black"), ("q2", "coffee-espresso")]
    two = build_dataset(data, pairs, [["tea-green", "astro-moon"], ["coffee-decaf", "geo-sahara"]])
    assert two.column_names == ["query", "document", "negative_1", "negative_2"]
    assert (
        two[0]["query"] == "which tea is oxidised the most" and two[1]["negative_1"] == data.documents["coffee-decaf"]
    )
    assert router_mapping(two.column_names) == {
        "query": "query",
        "document": "document",
        "negative_1": "document",
        "negative_2": "document",
    }
    assert build_dataset(data, pairs).column_names == ["query", "document"]
