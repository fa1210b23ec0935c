"""The search API: results, errors, exact search, tower checks, damaged files."""

from __future__ import annotations

import pytest

from dualsearch.errors import (
    DualsearchError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidInputError,
    SearchFailedError,
)
from dualsearch.index import layout
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from tests.helpers import live_segment_dir


def test_search_returns_ranked_documents(tiny_index, fake_encoder):
    searcher = Searcher.open(tiny_index, encoder=fake_encoder)
    results = searcher.search("largest hot desert in Africa", k=3)
    assert [r.rank for r in results] == [1, 2, 3]
    assert results[0].doc_id == "geo-sahara" and results[0].title == "Sahara"
    assert results[0].metadata == {"topic": "geo"}
    assert results[0].score >= results[1].score >= results[2].score


def test_k_larger_than_corpus_returns_what_exists_without_padding(tiny_index, fake_encoder):
    searcher = Searcher.open(tiny_index, encoder=fake_encoder)
    results = searcher.search("tea", k=1000)
    assert len(results) == 26 == len({r.doc_id for r in results})


def test_exact_search_matches_ann_on_a_single_list_index(tiny_index, fake_encoder):
    searcher = Searcher.open(tiny_index, encoder=fake_encoder)
    approximate = [r.doc_id for r in searcher.search("planet with a red storm", k=5)]
    assert [r.doc_id for r in searcher.search("planet with a red storm", k=5, exact=True)] == approximate


def test_search_batch_equals_single_searches(tiny_index, fake_encoder):
    searcher = Searcher.open(tiny_index, encoder=fake_encoder)
    queries = ["espresso pressure", "violin strings", "sleep hours"]
    batch = searcher.search_batch(queries, k=4)
    assert batch == [searcher.search(query, k=4) for query in queries]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": ""}, "empty query"),
        ({"query": "   "}, "empty query"),
        ({"query": "tea", "k": 0}, "k must be"),
        ({"query": "tea", "k": -3}, "k must be"),
        ({"query": "tea", "k": 2.5}, "k must be"),
        ({"query": "tea", "nprobe": 0}, "nprobe must be"),
    ],
)
def test_bad_arguments_get_clear_errors(tiny_index, fake_encoder, kwargs, message):
    searcher = Searcher.open(tiny_index, encoder=fake_encoder)
    with pytest.raises(InvalidInputError, match=message):
        searcher.search(**kwargs)


def test_unknown_path_and_non_index(tmp_path, fake_encoder):
    with pytest.raises(IndexNotFoundError, match="no index at"):
        Searcher.open(tmp_path / "nowhere", encoder=fake_encoder)
    with pytest.raises(IndexNotFoundError, match="not a dualsearch index"):
        Searcher.open(tmp_path, encoder=fake_encoder)


def test_other_towers_are_refused(tiny_index):
    with pytest.raises(IndexMismatchError, match="was built with towers 'fake'"):
        Searcher.open(tiny_index, encoder=FakeEncoder(salt="retrained"))
    with pytest.raises(IndexMismatchError, match="dimension 256"):
        Searcher.open(tiny_index, encoder=FakeEncoder(dimension=32))


@pytest.mark.parametrize("name", [layout.INDEX_FILE, layout.STORE_FILE, layout.VECTORS_FILE])
def test_altered_or_truncated_files_are_detected(tiny_index, fake_encoder, name):
    path = live_segment_dir(tiny_index) / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=f"{name} does not match its checksum"):
        Searcher.open(tiny_index, encoder=fake_encoder)
    path.write_bytes(bytes(data[:-10]))
    with pytest.raises(IndexCorruptError, match=f"{name} has .* bytes"):
        Searcher.open(tiny_index, encoder=fake_encoder)


def test_open_searcher_keeps_its_version_after_a_rebuild_until_reload(tmp_path, fake_encoder):
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.write.build import build_index

    index_dir = tmp_path / "idx"
    build_index(read_corpus("tiny"), index_dir, fake_encoder)
    old = Searcher.open(index_dir, encoder=fake_encoder)
    small = tmp_path / "small.jsonl"
    small.write_text('{"_id": "only", "text": "a single document about tea"}\n')
    build_index(read_corpus(small), index_dir, fake_encoder)
    assert len(old.search("tea", k=100)) == 26  # still answering from the version it opened
    fresh = old.reload()  # hands over to the live version, sharing the towers, and closes the old searcher
    assert [r.doc_id for r in fresh.search("tea", k=100)] == ["only"]
    assert fresh.encoder is old.encoder and len(fresh) == 1
    with pytest.raises(SearchFailedError):
        old.search("tea", exact=True)


def test_errors_are_catchable_as_builtins():
    assert issubclass(IndexNotFoundError, FileNotFoundError) and issubclass(InvalidInputError, ValueError)
    assert all(issubclass(e, DualsearchError) for e in (IndexNotFoundError, InvalidInputError, IndexCorruptError))


def test_a_searcher_is_a_context_manager_and_refuses_work_once_closed(tiny_index, fake_encoder):
    with Searcher.open(tiny_index, encoder=fake_encoder) as searcher:
        assert searcher.search("tea", k=1)
    with pytest.raises(SearchFailedError, match="is closed"):
        searcher.search("tea")
    searcher.close()  # closing twice is harmless


def test_a_held_searcher_keeps_exact_search_after_its_version_is_removed(tmp_path, fake_encoder):
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.write.build import build_index

    index_dir = tmp_path / "idx"
    build_index(read_corpus("tiny"), index_dir, fake_encoder)
    held = Searcher.open(index_dir, encoder=fake_encoder)
    for _ in range(2):  # two newer versions: the held one is deleted from disk
        build_index(read_corpus("tiny"), index_dir, fake_encoder)
    assert not held.version_dir.exists()
    assert held.search("green tea", k=3, exact=True)[0].doc_id == "tea-green"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("a \ud800", r"the query is not valid Unicode \(a lone surrogate at character 2\)"),
        ("caf\udce9 espresso", "the query is not valid Unicode"),  # a non-UTF-8 byte from the command line
        ("\x00\x00", "empty query"),
        ("\u200b\u200c", "empty query"),
        (b"vitamin", "the query must be a string, got bytes"),
        (42, "the query must be a string, got int"),
    ],
)
def test_queries_no_tower_can_read_are_refused(tiny_index, fake_encoder, query, message):
    searcher = Searcher.open(tiny_index, encoder=fake_encoder)
    with pytest.raises(InvalidInputError, match=message):
        searcher.search(query)
    with pytest.raises(InvalidInputError, match=message):
        searcher.search_batch(["tea", query])


def test_damaged_index_errors_say_how_to_recover(tiny_index, fake_encoder):
    (live_segment_dir(tiny_index) / layout.INDEX_FILE).write_bytes(b"garbage")
    with pytest.raises(IndexCorruptError, match=r"To recover, rebuild the index: dualsearch index CORPUS --out DIR"):
        Searcher.open(tiny_index, encoder=fake_encoder)
