"""Explanations (dualsearch.ranking.explain): token shares that add up to the score they explain."""

from __future__ import annotations

import numpy as np
import pytest

from dualsearch.corpora.document import Document
from dualsearch.ranking.explain import encoded_passage, highlight_words, token_shares
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.towers.contract import TokenVectors
from dualsearch.write.build import IndexConfig, build_index, index_corpus


@pytest.fixture(scope="module")
def tiny_model_index(tmp_path_factory, tiny_encoder):
    index_dir = tmp_path_factory.mktemp("explain") / "index"
    index_corpus("tiny", index_dir, tiny_encoder)
    return index_dir


def test_on_a_mean_pooled_tower_the_shares_add_up_to_the_stored_cosine(tiny_model_index, tiny_encoder):
    query = "how is espresso made"
    with Searcher.open(tiny_model_index, encoder=tiny_encoder) as searcher:
        results = searcher.search(query, k=5, mode="dense", exact=True)
        explanations = searcher.explain(query, results)
    query_vector = tiny_encoder.encode_queries([query])[0]
    [query_tokens] = tiny_encoder.token_vectors([query], "query")
    for result, explanation in zip(results, explanations):
        assert explanation["exact"] is True
        assert explanation["dense_score"] == pytest.approx(result.dense_score, abs=1e-4)
        text, _, _ = encoded_passage(result.title, result.text, result.passage)
        [tokens] = tiny_encoder.token_vectors([text], "document")
        shares, exact = token_shares(tokens, query_vector.astype(np.float64))
        assert exact and shares.sum() == pytest.approx(result.dense_score, abs=1e-4)
        document_vector = tiny_encoder.encode_documents([text])[0].astype(np.float64)
        query_shares, _ = token_shares(query_tokens, document_vector)
        assert query_shares.sum() == pytest.approx(result.dense_score, abs=1e-4)
        listed = [token["share"] for token in explanation["document_tokens"]]
        assert listed == sorted(listed, reverse=True) and len(listed) == min(10, len(tokens.tokens))
        assert listed[0] == pytest.approx(shares.max(), abs=1e-6)


def test_token_places_point_into_the_title_or_the_text(tiny_model_index, tiny_encoder):
    with Searcher.open(tiny_model_index, encoder=tiny_encoder) as searcher:
        results = searcher.search("green tea leaves", k=3, mode="dense")
        for result, explanation in zip(results, searcher.explain("green tea leaves", results)):
            for token in explanation["document_tokens"] + explanation["query_tokens"]:
                if token.get("field") is None and "start" not in token:
                    assert token["token"] in ("[CLS]", "[SEP]")
                    continue
                source = {"title": result.title, "text": result.text}.get(token.get("field"), "green tea leaves")
                assert source[token["start"] : token["end"]].lower() == token["token"].removeprefix("##")


def test_a_long_document_is_explained_on_the_passage_that_matched(tmp_path):
    encoder = FakeEncoder(dimension=4096, window=30)  # no bucket shared with a filler; body words 29-57 in passage 2
    filler = " ".join(f"filler{number}" for number in range(40))
    document = Document("long", "Notes", f"{filler} zebras graze on open grassland {filler}")
    index_dir = tmp_path / "index"
    build_index([document, Document("other", "", "cats sleep")], index_dir, encoder, IndexConfig())
    with Searcher.open(index_dir, encoder=encoder) as searcher:
        [result] = searcher.search("zebras grassland", k=1, mode="dense")
        [explanation] = searcher.explain("zebras grassland", [result])
    assert result.passage[0] > 0 and explanation["exact"]
    assert explanation["dense_score"] == pytest.approx(result.dense_score, abs=1e-4)
    placed = {result.text[token["start"] : token["end"]] for token in explanation["document_tokens"][:2]}
    assert placed == {"zebras", "grassland"}
    assert set(highlight_words(result.text, explanation["document_tokens"], count=2)) == {"zebras", "grassland"}


def test_bm25_shares_add_up_to_the_lexical_score(tiny_index, fake_encoder):
    query = "green tea and black tea"
    with Searcher.open(tiny_index, encoder=fake_encoder) as searcher:
        results = searcher.search(query, k=5, mode="lexical")
        explanations = searcher.explain(query, results)
    assert results
    for result, explanation in zip(results, explanations):
        assert "dense_score" not in explanation  # lexical mode: the towers did not score it
        total = sum(term["share"] for term in explanation["lexical_terms"])
        assert total == pytest.approx(result.lexical_score, rel=1e-4)


def test_hybrid_results_explain_both_sides(tiny_index, fake_encoder):
    with Searcher.open(tiny_index, encoder=fake_encoder) as searcher:
        results = searcher.search("why does mars look red", k=3)
        explanations = searcher.explain("why does mars look red", results)
    for result, explanation in zip(results, explanations):
        assert explanation["dense_score"] == pytest.approx(result.dense_score, abs=1e-4)
        assert sum(term["share"] for term in explanation["lexical_terms"]) == pytest.approx(
            result.lexical_score, rel=1e-4, abs=1e-6
        )


def test_other_pooling_is_an_approximation_that_still_adds_up():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 8)).astype(np.float32)
    other = rng.normal(size=8)
    other /= np.linalg.norm(other)
    tokens = TokenVectors(list("abcde"), [None] * 5, vectors, mean_pooled=False)
    shares, exact = token_shares(tokens, other)
    mean = vectors.mean(axis=0)
    assert not exact and shares.sum() == pytest.approx(float(mean @ other / np.linalg.norm(mean)), abs=1e-6)
    exact_shares, exact = token_shares(TokenVectors(list("abcde"), [None] * 5, vectors, True), other)
    assert exact and exact_shares.sum() == pytest.approx(float(mean @ other / np.linalg.norm(mean)), abs=1e-6)


def test_towers_without_token_vectors_say_so(tiny_index, fake_encoder, monkeypatch):
    class Plain:  # the Encoder contract without the optional token_vectors
        def __getattr__(self, name):
            if name == "token_vectors":
                raise AttributeError(name)
            return getattr(fake_encoder, name)

    with Searcher.open(tiny_index, encoder=fake_encoder) as searcher:
        results = searcher.search("green tea", k=2)
        searcher.encoder = Plain()
        explanations = searcher.explain("green tea", results)
    assert all(
        explanation["exact"] is False and "no token vectors" in explanation["note"] for explanation in explanations
    )
