"""The encoder contract: the real towers and the test double both satisfy it."""

from __future__ import annotations

import numpy as np
import pytest

from dualsearch.errors import InvalidInputError
from dualsearch.testing import FakeEncoder
from dualsearch.towers.contract import Encoder, check_texts


def test_the_fake_encoder_is_an_encoder_without_private_imports():
    encoder = FakeEncoder(dimension=16)
    assert isinstance(encoder, Encoder)
    vectors = encoder.encode_documents(["green tea", "black tea"])  # (2, 16)
    assert vectors.shape == (2, 16) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert encoder.identity().dimension == 16


def test_the_dual_encoder_is_an_encoder(tiny_encoder):
    assert isinstance(tiny_encoder, Encoder)


def test_an_object_missing_a_method_is_not_an_encoder():
    class QueriesOnly:
        batch_size, dimension = 1, 2

        def encode_queries(self, texts, show_progress=False): ...

    assert not isinstance(QueriesOnly(), Encoder)


@pytest.mark.parametrize("texts", ["one string", ["fine", ""], ["fine", None]])
def test_check_texts_refuses_what_no_tower_can_encode(texts):
    with pytest.raises(InvalidInputError):
        check_texts(texts, "query")
