"""Cosine, dot product and Euclidean towers: the index's metric follows the towers, searches rank as
the similarity says, a mismatch is refused on open, and explanations stay honest."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from dualsearch.corpora.document import Document
from dualsearch.errors import IndexMismatchError, InvalidInputError
from dualsearch.index import layout
from dualsearch.index.manifest import Manifest
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.towers.similarity import SIMILARITIES, check_similarity, pair_scores
from dualsearch.write.build import build_index

WORDS = "tea coffee water milk juice bread rice pasta apple pear plum grape lemon lime salt sugar".split()


def random_documents(count: int, seed: int = 0) -> list[Document]:
    """Documents of 1 to 12 words: lengths vary, so unnormalised vectors differ in length too."""
    rng = random.Random(seed)
    return [
        Document(f"d{number}", "", " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))))
        for number in range(count)
    ]


def expected_order(encoder: FakeEncoder, documents: list[Document], query: str, k: int) -> list[str]:
    scores = pair_scores(
        encoder.encode_queries([query])[0], encoder.encode_documents([d.text for d in documents]), encoder.similarity
    )
    return [documents[row].id for row in np.argsort(-scores, kind="stable")[:k]]


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_the_index_follows_the_towers_similarity(tmp_path, similarity):
    encoder = FakeEncoder(dimension=32, similarity=similarity)
    documents = random_documents(600)
    build_index(documents, tmp_path / "index", encoder)
    manifest = Manifest.read(layout.current_version_dir(tmp_path / "index"))
    assert manifest.similarity == similarity
    assert manifest.metric == ("l2" if similarity == "euclidean" else "inner_product")
    assert manifest.nlist > 1  # an IVF index, so the FAISS metric is the one trained with
    searcher = Searcher.open(tmp_path / "index", encoder)
    vectors = encoder.encode_documents([d.text for d in documents])
    for query in ("tea milk sugar", "lemon", "bread rice pasta apple"):
        exact = searcher.search(query, k=10, exact=True, mode="dense")
        scores = pair_scores(encoder.encode_queries([query])[0], vectors, similarity)
        by_id = {d.id: float(score) for d, score in zip(documents, scores)}
        assert [result.score for result in exact] == pytest.approx([by_id[r.doc_id] for r in exact], abs=1e-4)
        best = sorted(by_id.values(), reverse=True)[:10]  # ties make ids ambiguous, scores are not
        assert [result.score for result in exact] == pytest.approx(best, abs=1e-4)
        every_list = searcher.search(query, k=10, nprobe=manifest.nlist, mode="dense")
        assert [result.score for result in every_list] == pytest.approx(best, abs=1e-4)
        if similarity == "euclidean":
            assert all(result.score <= 0 for result in exact)  # negated squared distances


def test_dot_vectors_keep_their_length_and_rank_differently_from_cosine(tmp_path):
    documents = [Document("short", "", "tea"), Document("long", "", "tea tea tea tea coffee")]
    cosine, dot = FakeEncoder(dimension=32), FakeEncoder(dimension=32, similarity="dot")
    lengths = np.linalg.norm(dot.encode_documents([d.text for d in documents]), axis=1)
    assert not np.allclose(lengths, 1.0)
    assert np.allclose(np.linalg.norm(cosine.encode_documents([d.text for d in documents]), axis=1), 1.0)
    # cosine prefers the document that is only about tea; dot product the one that says it most
    for encoder, order in ((cosine, ["short", "long"]), (dot, ["long", "short"])):
        assert expected_order(encoder, documents, "tea", 2) == order
        build_index(documents, tmp_path / encoder.similarity, encoder)
        found = Searcher.open(tmp_path / encoder.similarity, encoder).search("tea", k=2, mode="dense")
        assert [result.doc_id for result in found] == order


def test_an_index_refuses_the_same_towers_with_another_similarity(tmp_path):
    build_index(random_documents(50), tmp_path / "index", FakeEncoder(dimension=32))
    with pytest.raises(IndexMismatchError, match="compare vectors by cosine similarity.*compare by dot"):
        Searcher.open(tmp_path / "index", FakeEncoder(dimension=32, similarity="dot"))


def test_rebuilding_with_another_similarity_reencodes_every_document(tmp_path):
    documents = random_documents(40)
    build_index(documents, tmp_path / "index", FakeEncoder(dimension=32))
    build_index(documents, tmp_path / "index", FakeEncoder(dimension=32, similarity="euclidean"))
    manifest = Manifest.read(layout.current_version_dir(tmp_path / "index"))
    assert manifest.similarity == "euclidean" and manifest.metric == "l2"
    encoder = FakeEncoder(dimension=32, similarity="euclidean")
    # vectors kept from the cosine build (unit length) would give other distances than these
    found = Searcher.open(tmp_path / "index", encoder).search("tea", k=5, exact=True, mode="dense")
    assert [result.score for result in found] == pytest.approx(
        sorted(
            pair_scores(
                encoder.encode_queries(["tea"])[0], encoder.encode_documents([d.text for d in documents]), "euclidean"
            ),
            reverse=True,
        )[:5],
        abs=1e-4,
    )


@pytest.mark.parametrize("similarity", ["dot", "euclidean"])
def test_explanations_add_up_to_the_score_and_say_when_they_are_exact(tmp_path, similarity):
    encoder = FakeEncoder(dimension=64, similarity=similarity)
    build_index(random_documents(80), tmp_path / "index", encoder)
    searcher = Searcher.open(tmp_path / "index", encoder)
    results = searcher.search("tea milk", k=3, mode="dense", exact=True)
    explanations = searcher.explain("tea milk", results)
    for result, explanation in zip(results, explanations):
        assert explanation["exact"] is (similarity == "dot")  # the squared distance is no sum over tokens
        assert explanation["dense_score"] == pytest.approx(result.dense_score, abs=1e-4)


def test_unknown_similarities_are_refused():
    with pytest.raises(InvalidInputError, match="unknown similarity 'manhattan'"):
        check_similarity("manhattan")


def test_a_manifest_without_a_similarity_reads_as_cosine(tmp_path):
    build_index(random_documents(20), tmp_path / "index", FakeEncoder(dimension=32))
    version = layout.current_version_dir(tmp_path / "index")
    data = json.loads((version / "manifest.json").read_text())
    del data["similarity"]  # written before towers could compare otherwise
    (version / "manifest.json").write_text(json.dumps(data))
    assert Manifest.read(version).similarity == "cosine"


@pytest.mark.slow
@pytest.mark.parametrize("similarity", ["dot", "euclidean"])
def test_towers_saved_with_a_similarity_keep_it_through_export_and_index(tmp_path, similarity):
    from dualsearch.testing import save_tiny_router_model
    from dualsearch.towers.dual_encoder import DualEncoder
    from dualsearch.towers.export import export_towers
    from dualsearch.towers.exported import TOWER_FILE, OnnxEncoder

    model_dir = save_tiny_router_model(tmp_path / "model", similarity=similarity)
    encoder = DualEncoder.load(str(model_dir))
    assert encoder.identity().similarity == similarity
    texts = ["green tea", "a much longer text about coffee beans and how they are roasted"]
    vectors = encoder.encode_documents(texts)
    assert not np.allclose(np.linalg.norm(vectors, axis=1), 1.0)  # no Normalize, and none added
    export_towers(encoder, tmp_path / "towers", "onnx")
    tower = json.loads((tmp_path / "towers" / "document" / TOWER_FILE).read_text())
    assert tower["similarity"] == similarity and tower["normalised"] is False
    onnx = OnnxEncoder.load(tmp_path / "towers")
    assert onnx.identity().similarity == similarity
    np.testing.assert_allclose(onnx.encode_documents(texts), vectors, rtol=1e-3, atol=1e-4)
    documents = [Document(f"d{n}", "", text) for n, text in enumerate(texts * 3)]
    build_index(documents, tmp_path / "index", encoder)
    assert Manifest.read(layout.current_version_dir(tmp_path / "index")).similarity == similarity
    found = Searcher.open(tmp_path / "index").search("tea", k=2, mode="dense")  # the index's own query tower
    assert len(found) == 2
