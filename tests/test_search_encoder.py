"""The dual encoder on tiny in-process towers (and one check of the packaged default)."""

from __future__ import annotations

import numpy as np
import pytest

from dualsearch.errors import InvalidInputError, ModelError
from dualsearch.towers import weights as towers
from dualsearch.towers.dual_encoder import DualEncoder, state_dict_sha256


def test_router_model_encodes_each_side_with_its_own_tower(tiny_encoder):
    texts = ["green tea leaves", "a planet with red dust"]
    queries, documents = tiny_encoder.encode_queries(texts), tiny_encoder.encode_documents(texts)
    assert queries.shape == documents.shape == (2, 32) and queries.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(queries, documents)  # separate weights give different vectors
    assert tiny_encoder.identity().routes == ("document", "query")


def test_plain_model_serves_as_both_towers(tiny_plain_model_dir):
    encoder = DualEncoder.load(str(tiny_plain_model_dir))
    texts = ["green tea leaves"]
    np.testing.assert_allclose(encoder.encode_queries(texts), encoder.encode_documents(texts), rtol=1e-5)
    assert encoder.identity().routes == ()


def test_identity_hash_is_stable_and_changes_with_the_weights(tiny_model_dir, tiny_encoder):
    again = DualEncoder.load(str(tiny_model_dir))
    assert again.identity() == tiny_encoder.identity()
    import torch

    with torch.no_grad():
        next(again.model.parameters()).add_(1e-3)
    assert state_dict_sha256(again.model) != tiny_encoder.identity().weights_sha256


def test_each_tower_has_its_own_hash_and_one_changed_tower_changes_only_its_own(tiny_model_dir, tiny_encoder):
    identity = tiny_encoder.identity()
    router = tiny_encoder.model[0]
    assert identity.query_weights_sha256 == state_dict_sha256(router.sub_modules["query"])
    assert identity.document_weights_sha256 == state_dict_sha256(router.sub_modules["document"])
    assert identity.weights_sha256 == state_dict_sha256(tiny_encoder.model)  # indexes built before still open
    again = DualEncoder.load(str(tiny_model_dir))
    import torch

    with torch.no_grad():
        next(again.model[0].sub_modules["query"].parameters()).add_(1e-3)
    changed = again.identity()
    assert changed.query_weights_sha256 != identity.query_weights_sha256
    assert changed.document_weights_sha256 == identity.document_weights_sha256


def test_a_plain_model_has_one_hash_for_both_sides(tiny_plain_model_dir):
    identity = DualEncoder.load(str(tiny_plain_model_dir)).identity()
    assert identity.query_weights_sha256 == identity.document_weights_sha256 == identity.weights_sha256


@pytest.mark.parametrize("texts", [["fine", ""], ["fine", "   "], "a single string", [None]])
def test_bad_texts_are_refused(tiny_encoder, texts):
    with pytest.raises(InvalidInputError):
        tiny_encoder.encode_queries(texts)


def test_empty_list_gives_an_empty_array(tiny_encoder):
    assert tiny_encoder.encode_documents([]).shape == (0, 32)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="cannot load model"):
        DualEncoder.load(str(tmp_path / "no-such-model"))


def test_default_weights_are_checked_against_their_sha256(monkeypatch):
    towers.default_base_path.cache_clear()
    monkeypatch.setattr(towers, "MINILM_WEIGHTS_SHA256", "0" * 64)
    try:
        with pytest.raises(ModelError, match="expected 0000"):
            towers.default_base_path()
    finally:
        towers.default_base_path.cache_clear()
    monkeypatch.undo()
    assert towers.default_base_path().endswith("model")


def test_document_tokens_and_window_come_from_the_document_tower(tiny_encoder):
    assert tiny_encoder.document_window == 62  # max_seq_length 64 minus [CLS] and [SEP]
    [spans] = tiny_encoder.document_token_spans(["green tea"])
    assert [("green tea")[start:end] for start, end in spans] == ["green", "tea"]
    assert tiny_encoder.document_token_spans([]) == []  # a chunk without titles asks for none


def test_a_relative_model_path_is_recorded_absolute(tiny_model_dir, monkeypatch):
    monkeypatch.chdir(tiny_model_dir.parent)
    encoder = DualEncoder.load(tiny_model_dir.name)
    assert encoder.identity().model == str(tiny_model_dir.resolve())  # usable from any working directory


def test_model_reference_keeps_default_and_hub_ids():
    assert towers.model_reference("default") == "default"
    assert towers.model_reference("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
