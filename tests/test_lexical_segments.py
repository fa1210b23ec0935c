"""BM25 over segments with deletions (dualsearch.index.lexical_segments): exactly bm25s's scores for one
segment, and scores that depend on the live documents only, whatever the writes that made them."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import IndexCorruptError
from dualsearch.index.lexical import LexicalIndex
from dualsearch.index.lexical_segments import LexicalSegment, SegmentedBM25

QUERIES = ["green tea", "how is espresso made", "why does mars look red", "tea tea leaves", "the of and", "zzz"]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [f"{document.title} {document.text}" for document in read_corpus("tiny")]


def test_one_segment_scores_as_the_bm25s_index_of_the_same_documents(texts):
    reference, segmented = LexicalIndex.build(texts), SegmentedBM25([LexicalSegment.build(texts)])
    for query in QUERIES:
        np.testing.assert_allclose(segmented.scores(query), reference.scores(query), atol=1e-6)
    mask = np.zeros(len(texts), np.float32)
    mask[::2] = 1
    np.testing.assert_allclose(segmented.scores("green tea", mask), reference.scores("green tea", mask), atol=1e-6)


def test_scores_do_not_depend_on_write_history(texts):
    """Four segments, a third of the rows deleted (some re-added in a later segment), score each live
    document as a fresh one-segment index of the live documents does."""
    shuffle = random.Random(7)
    history = [(number, text) for number, text in enumerate(texts)]
    shuffle.shuffle(history)
    rewritten = history[:6]  # written twice: deleted from an early segment, added again to the last
    parts = [history[0:7], history[7:14], history[14:], rewritten]
    segments = [LexicalSegment.build([text for _, text in part]) for part in parts]
    live = [np.ones(len(part), bool) for part in parts]
    live[0][:6] = False  # the first copies of the rewritten documents
    dropped = {number for number, _ in history[14:18]}
    live[2][:4] = False  # deleted for good
    segmented = SegmentedBM25(segments, live)
    live_numbers = [
        number
        for part, mask in zip(parts, live, strict=True)
        for (number, _), kept in zip(part, mask, strict=True)
        if kept
    ]
    assert sorted(live_numbers) == sorted(set(range(len(texts))) - dropped)
    fresh = SegmentedBM25([LexicalSegment.build([texts[number] for number in live_numbers])])
    assert segmented.document_count == fresh.document_count == len(live_numbers)
    all_live = np.concatenate(live)
    for query in QUERIES:
        scores = segmented.scores(query)
        assert not scores[~all_live].any()  # deleted rows never score
        np.testing.assert_allclose(scores[all_live], fresh.scores(query), atol=1e-6)


def test_term_shares_add_up_to_the_score(texts):
    segmented = SegmentedBM25([LexicalSegment.build(texts[:10]), LexicalSegment.build(texts[10:])])
    rows = [0, 3, 12, 20]
    shares = segmented.term_scores("green tea tea espresso", rows)
    assert [term for term, _ in shares] == ["green", "tea", "espresso"]
    np.testing.assert_allclose(
        sum(share for _, share in shares), segmented.scores("green tea tea espresso")[rows], atol=1e-6
    )


def test_a_segment_reads_back_as_written_and_a_damaged_one_is_refused(texts, tmp_path):
    written = LexicalSegment.build(texts)
    names = written.save(tmp_path / "segment")
    assert sorted(names) == sorted(path.name for path in (tmp_path / "segment").iterdir())
    loaded = LexicalSegment.load(tmp_path / "segment")
    np.testing.assert_array_equal(
        SegmentedBM25([loaded]).scores("green tea"), SegmentedBM25([written]).scores("green tea")
    )
    (tmp_path / "segment" / "postings-rows.npy").write_bytes(b"\x93NUMPY broken")
    with pytest.raises(IndexCorruptError, match="lexical segment cannot be read"):
        LexicalSegment.load(tmp_path / "segment")


def test_an_index_with_every_document_deleted_scores_nothing(texts):
    segmented = SegmentedBM25([LexicalSegment.build(texts[:3])], [np.zeros(3, bool)])
    assert segmented.document_count == 0 and not segmented.scores("green tea").any()
