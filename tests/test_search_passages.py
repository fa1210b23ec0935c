"""Passages: windows at their boundaries, titles in front, and whole documents in the results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dualsearch.corpora.document import Document
from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import InvalidInputError
from dualsearch.index import layout
from dualsearch.index.config import IndexConfig
from dualsearch.index.manifest import Manifest
from dualsearch.index.passages import PassageConfig, lead_paragraph_end, plan_passages, window_spans
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import build_index
from dualsearch.write.reindex import delete_documents, reindex


def tokens(count: int) -> list[tuple[int, int]]:
    """Spans of ``count`` one-character tokens separated by spaces ("a a a ...")."""
    return [(2 * i, 2 * i + 1) for i in range(count)]


def test_a_text_of_exactly_one_window_is_one_passage():
    assert window_spans(tokens(8), window=8, stride=4) == [(0, 15)]


def test_one_token_more_than_the_window_makes_a_second_passage_ending_at_the_last_token():
    spans = window_spans(tokens(9), window=8, stride=4)
    assert spans == [(0, 15), (8, 17)]


def test_no_empty_passage_when_the_last_window_ends_exactly_at_the_text():
    assert window_spans(tokens(12), window=8, stride=4) == [(0, 15), (8, 23)]  # not a third from token 8


def test_passages_overlap_by_window_minus_stride_and_cover_every_token():
    spans = window_spans(tokens(50), window=10, stride=5)
    covered = {position for start, end in spans for position in range(start, end, 2)}
    assert covered == {2 * i for i in range(50)} and len(spans) == 9


def test_a_document_that_fits_is_encoded_exactly_as_before():
    document = Document("d", "Tea", "Green tea is unfermented.")
    plan = plan_passages([document], FakeEncoder(window=50), window=50, stride=25)
    assert plan.texts == [document.encoding_text()] and plan.spans == [[(0, len(document.text))]]


def test_every_passage_carries_the_title():
    document = Document("d", "Mars", " ".join(f"w{i}" for i in range(30)))
    plan = plan_passages([document], FakeEncoder(window=10), window=10, stride=5)
    assert len(plan.texts) > 3 and all(text.startswith("Mars w") for text in plan.texts)


@pytest.mark.parametrize(("window", "stride"), [(4, None), (16, 32), (None, 0)])
def test_bad_passage_settings_are_refused(window, stride):
    with pytest.raises(InvalidInputError):
        PassageConfig(window, stride)


def long_corpus(path, documents: dict[str, str]):
    path.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in documents.items()))
    return path


def filler(word: str, count: int) -> str:
    return " ".join(f"{word}{i % 7}" for i in range(count))


@pytest.fixture
def long_index(tmp_path):
    documents = {f"doc{n}": filler(f"topic{n}x", 40) for n in range(12)}
    documents["needle"] = filler("hay", 60) + " the zebra crossing lies at the end " + filler("hay", 5)
    index_dir = tmp_path / "idx"
    build_index(read_corpus(long_corpus(tmp_path / "c.jsonl", documents)), index_dir, FakeEncoder(window=16))
    return index_dir


def test_results_are_distinct_documents_with_the_passage_that_matched(long_index):
    searcher = Searcher.open(long_index, encoder=FakeEncoder(window=16))
    assert searcher.manifest.passage_count > 3 * searcher.manifest.document_count
    results = searcher.search("topic3x1 topic3x2", k=5, mode="dense")
    assert len({r.doc_id for r in results}) == 5 and results[0].doc_id == "doc3"
    needle = searcher.search("zebra crossing", k=1, mode="dense")[0]
    start, end = needle.passage
    assert needle.doc_id == "needle" and "zebra crossing" in needle.text[start:end] and start > 0


def test_k_up_to_the_corpus_size_returns_every_document_once(long_index):
    searcher = Searcher.open(long_index, encoder=FakeEncoder(window=16))
    assert sorted(r.doc_id for r in searcher.search("hay0", k=100, mode="dense")) == sorted(
        [f"doc{n}" for n in range(12)] + ["needle"]
    )


def passage_rows_agree(index_dir) -> bool:
    """The manifest's passages are the live documents', and each segment's vectors, index and store agree."""
    manifest = Manifest.read(layout.current_version_dir(index_dir))
    with Searcher.open(index_dir, encoder=FakeEncoder(window=16)) as searcher:
        segments = searcher.store
        live = int(segments.passage_counts()[segments.live].sum())
        each = all(len(s.vectors) == int(s.passage_counts.sum()) == s.index.ntotal for s in segments.segments)
        return live == manifest.passage_count == len(segments.live_passage_rows()) and each


def test_changing_and_deleting_a_long_document_leaves_no_stray_passage(long_index, tmp_path):
    before = Manifest.read(layout.current_version_dir(long_index)).passage_count
    documents = {f"doc{n}": filler(f"topic{n}x", 40) for n in range(12)}
    documents["needle"] = "now a short text about a zebra"
    reindex(long_index, long_corpus(tmp_path / "changed.jsonl", documents), FakeEncoder(window=16))
    after = Manifest.read(layout.current_version_dir(long_index)).passage_count
    assert after < before and passage_rows_agree(long_index)
    searcher = Searcher.open(long_index, encoder=FakeEncoder(window=16))
    assert searcher.search("zebra", k=1, mode="dense")[0].passage == (0, len(documents["needle"]))
    delete_documents(long_index, ["doc3"], FakeEncoder(window=16))
    assert passage_rows_agree(long_index)
    hits = Searcher.open(long_index, encoder=FakeEncoder(window=16)).search("topic3x1", k=20, mode="dense")
    assert "doc3" not in {r.doc_id for r in hits}


def test_max_passages_keeps_the_opening_only_and_counts_what_it_cut():
    document = Document("d", "", " ".join(f"w{i}" for i in range(40)))
    plan = plan_passages([document], FakeEncoder(window=10), window=10, stride=5, max_passages=1)
    assert plan.texts == [" ".join(f"w{i}" for i in range(10))] and plan.cut_short == 1


LEAD_TEXT = "Remove a whole directory tree.\n  \nEvery file below it goes too, then the directory itself."


def test_the_lead_paragraph_ends_before_the_first_blank_line_and_needs_text_after_it():
    assert LEAD_TEXT[: lead_paragraph_end(LEAD_TEXT)] == "Remove a whole directory tree."
    assert lead_paragraph_end("\n\n  Leading blank lines.\n\nThen more.") == len("\n\n  Leading blank lines.")
    for one_paragraph in ("One line.", "Two lines,\nno blank one.", "Trailing blank lines.\n\n \n", ""):
        assert lead_paragraph_end(one_paragraph) is None


def test_a_lead_passage_comes_first_and_the_document_is_encoded_as_before_after_it():
    document = Document("d", "shutil.rmtree(path)", LEAD_TEXT)
    plan = plan_passages([document], FakeEncoder(window=50), window=50, stride=50, lead=True)
    lead_end = len("Remove a whole directory tree.")
    assert plan.spans == [[(0, lead_end), (0, len(LEAD_TEXT))]]
    assert plan.texts == ["shutil.rmtree(path) Remove a whole directory tree.", document.encoding_text()]
    without = plan_passages([document], FakeEncoder(window=50), window=50, stride=50)
    assert without.texts == [document.encoding_text()]


def test_no_lead_passage_for_one_paragraph_or_a_lead_longer_than_the_first_window():
    one = Document("a", "", "Just one paragraph of text.")
    long_lead = Document("b", "", " ".join(f"w{i}" for i in range(12)) + "\n\nAfter.")
    plan = plan_passages([one, long_lead], FakeEncoder(window=10), window=10, stride=10, lead=True)
    assert plan.spans[0] == [(0, len(one.text))]
    assert len(plan.spans[1]) == 2 and plan.spans[1][0][0] == 0 and plan.spans[1][1][0] > 0  # windows only


def test_a_lead_passage_is_searched_recorded_and_kept_by_a_reindex(tmp_path):
    documents = {f"doc{n}": f"Topic{n} summary.\n\n" + filler(f"detail{n}x", 8) for n in range(6)}
    corpus = long_corpus(tmp_path / "c.jsonl", documents)
    index_dir = tmp_path / "idx"
    build_index(read_corpus(corpus), index_dir, FakeEncoder(window=64), IndexConfig(lead_passage=True))
    manifest = Manifest.read(layout.current_version_dir(index_dir))
    assert manifest.passages["lead"] is True and manifest.passage_count == 12 and passage_rows_agree(index_dir)
    hit = Searcher.open(index_dir, encoder=FakeEncoder(window=64)).search("topic3 summary", k=1, mode="dense")[0]
    assert hit.doc_id == "doc3" and hit.passage == (0, len("Topic3 summary."))
    documents["doc0"] = "Changed summary.\n\nAnd a new body."
    report = reindex(index_dir, long_corpus(tmp_path / "changed.jsonl", documents), FakeEncoder(window=64))
    manifest = Manifest.read(layout.current_version_dir(index_dir))  # settings from the manifest: one to encode
    assert report.encoded == 1 and manifest.passages["lead"] is True and manifest.passage_count == 12


def test_an_index_without_lead_passages_records_no_lead_setting(long_index):
    assert "lead" not in Manifest.read(layout.current_version_dir(long_index)).passages


def test_exact_max_passage_takes_each_documents_best_passage_and_the_first_of_ties():
    from dualsearch.ranking.dense import PassageMap, exact_max_passage

    rng = np.random.default_rng(3)
    passages = PassageMap(rng.integers(1, 5, size=40))
    vectors = rng.integers(-2, 3, size=(passages.passage_count, 4)).astype(np.float32)  # small integers: ties
    query = rng.integers(-2, 3, size=4).astype(np.float32)
    documents = [int(doc) for doc in rng.choice(40, size=25, replace=False)]
    expected_scores, expected_rows = [], []
    for doc in documents:  # one document at a time, the first passage winning a tie
        rows = list(range(passages.first[doc], passages.first[doc] + passages.counts[doc]))
        scores = [float(vectors[row] @ query) for row in rows]
        best = scores.index(max(scores))
        expected_scores.append(scores[best])
        expected_rows.append(rows[best])
    assert exact_max_passage(vectors, passages, documents, query) == (expected_scores, expected_rows)
    assert exact_max_passage(vectors, passages, [], query) == ([], [])
