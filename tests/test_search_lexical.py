"""BM25 beside the towers, and the fusion of both rankings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import InvalidInputError
from dualsearch.index.lexical import LexicalIndex, tokenize
from dualsearch.ranking.fusion import convex_fusion, fuse, reciprocal_rank_fusion
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import build_index
from dualsearch.write.reindex import add_documents, delete_documents


def test_non_english_text_tokenises_without_error():
    assert tokenize(["Ελληνικά κείμενα", "日本語のテキスト", "ça coûte €5"]) == [
        ["ελληνικά", "κείμενα"],
        ["日本語のテキスト"],
        ["ça", "coût"],
    ]
    index = LexicalIndex.build(["Ελληνικά κείμενα", "plain english words"])
    assert index.scores("κείμενα")[0] > 0 and index.scores("κείμενα")[1] == 0


def test_a_query_of_stop_words_or_unknown_words_scores_nothing():
    index = LexicalIndex.build(["green tea", "black coffee"])
    assert not index.scores("the of and").any() and not index.scores("zzzz").any()


def test_rrf_rewards_agreement_and_convex_respects_the_weight():
    dense, lexical = np.array([0.9, 0.8, 0.5, 0.1]), np.array([1.0, 8.0, 5.0, 9.0])
    rrf = reciprocal_rank_fusion(dense, lexical)
    assert np.argmax(rrf) == 1  # second on both sides beats first on one side and last on the other
    assert np.argmax(convex_fusion(dense, lexical, 1.0)) == 0 and np.argmax(convex_fusion(dense, lexical, 0.0)) == 3
    with pytest.raises(InvalidInputError, match="choose from rrf, convex"):
        fuse(dense, lexical, "max", 60, 0.5)


class ParaphraseEncoder(FakeEncoder):
    """Towers that know "automobile" means "car": a paraphrase only the dense side can match."""

    def _encode(self, texts):
        return super()._encode([text.replace("automobile", "car") for text in texts])


@pytest.fixture
def hybrid_index(tmp_path):
    rows = [
        {"_id": "manual", "title": "Pump manual", "text": "Replacement part XK-4471-B fits the pump housing."},
        {"_id": "cars", "title": "Cars", "text": "How to repair a car engine at home."},
    ] + [{"_id": f"noise{i}", "text": f"general maintenance advice number {i} for the pump and car"} for i in range(30)]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    build_index(read_corpus(path), tmp_path / "idx", ParaphraseEncoder(dimension=16))
    return Searcher.open(tmp_path / "idx", encoder=ParaphraseEncoder(dimension=16))


def test_hybrid_finds_an_exact_code_that_only_bm25_matches(hybrid_index):
    # 16-dimensional hashing towers blur a rare code among 32 documents; BM25 matches it exactly
    assert hybrid_index.search("XK-4471-B", k=1, mode="lexical")[0].doc_id == "manual"
    hybrid = hybrid_index.search("XK-4471-B", k=3)
    assert hybrid[0].doc_id == "manual" and hybrid[0].lexical_score > 0 and hybrid[0].dense_score is not None


def test_hybrid_finds_a_paraphrase_that_only_the_towers_match(hybrid_index):
    assert hybrid_index.search("automobile", k=1, mode="lexical") == []  # no document has the word
    hybrid = hybrid_index.search("automobile", k=3)
    assert hybrid[0].doc_id == "cars" and hybrid[0].lexical_score == 0.0


def test_each_mode_reports_its_own_scores(hybrid_index):
    dense = hybrid_index.search("pump", k=2, mode="dense")[0]
    lexical = hybrid_index.search("pump", k=2, mode="lexical")[0]
    assert dense.score == dense.dense_score and dense.lexical_score is None
    assert lexical.score == lexical.lexical_score and lexical.dense_score is None and lexical.passage is None


def test_the_bm25_index_follows_add_and_delete(tmp_path):
    index_dir = tmp_path / "idx"
    build_index(read_corpus("tiny"), index_dir, FakeEncoder())
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"_id": "new", "text": "quokkas are small marsupials"}) + "\n")
    add_documents(index_dir, extra, FakeEncoder())
    assert [r.doc_id for r in Searcher.open(index_dir, encoder=FakeEncoder()).search("quokkas", mode="lexical")] == [
        "new"
    ]
    delete_documents(index_dir, ["new"], FakeEncoder())
    assert Searcher.open(index_dir, encoder=FakeEncoder()).search("quokkas", mode="lexical") == []


def test_building_an_index_leaves_bm25s_logging_to_the_application():
    import logging

    from dualsearch.index.lexical import LexicalIndex

    LexicalIndex.build(["green tea", "black coffee"])  # bm25s sets its logger to DEBUG when imported
    assert logging.getLogger("bm25s").level == logging.NOTSET
