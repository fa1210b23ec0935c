"""Shared fixtures: tiny towers built in-process, a fake encoder, indexes over the tiny corpus.

Helpers that are not fixtures are in tests/helpers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dualsearch.testing import FakeEncoder, save_tiny_plain_model, save_tiny_router_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return save_tiny_router_model(tmp_path_factory.mktemp("models") / "tiny-router")


@pytest.fixture(scope="session")
def tiny_plain_model_dir(tmp_path_factory) -> Path:
    return save_tiny_plain_model(tmp_path_factory.mktemp("models") / "tiny-plain")


@pytest.fixture(scope="session")
def tiny_encoder(tiny_model_dir):
    from dualsearch.towers.dual_encoder import DualEncoder

    return DualEncoder.load(str(tiny_model_dir))


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def tiny_index(tmp_path, fake_encoder) -> Path:
    """An index of the tiny hand-written corpus, built with the fake encoder."""
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.write.build import build_index

    index_dir = tmp_path / "tiny-index"
    build_index(read_corpus("tiny"), index_dir, fake_encoder, corpus_name="tiny")
    return index_dir


@pytest.fixture(scope="session")
def ray_address():
    """A local Ray cluster (2 CPUs) started once for the whole run, shared by every test that needs it;
    its address lets a CLI subprocess join it (``--ray-address``)."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'dualsearch[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
