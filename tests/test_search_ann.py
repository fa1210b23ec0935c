"""FAISS helpers on seeded synthetic vectors, checked against exact search."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from dualsearch.errors import IndexBuildError
from dualsearch.index import ann


def unit_vectors(count: int, dimension: int = 32, seed: int = 0, clusters: int = 20) -> np.ndarray:
    """Clustered vectors, as embeddings are: IVF is meaningful on them."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dimension))
    vectors = centres[rng.integers(0, clusters, count)] + 0.5 * rng.standard_normal((count, dimension))
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def build(factory, vectors):
    plan = ann.plan_index(factory, len(vectors))
    index = ann.train_index(plan, vectors.shape[1], vectors[ann.training_sample(len(vectors), plan.nlist)])
    ann.add_vectors(index, vectors, np.arange(len(vectors)))
    return index, plan


def test_nlist_is_derived_from_the_data_and_capped_for_small_corpora():
    assert ann.plan_index(None, 10_000) == ann.IndexPlan("IVF256,Flat", 256)  # 4·sqrt(10000) = 400 > 10000/39
    assert ann.plan_index(None, 1_000_000).nlist == 4000
    assert ann.plan_index("IVF4096,Flat", 500) == ann.IndexPlan("IVF12,Flat", 12)
    assert ann.plan_index("IVF,SQ8", 20) == ann.IndexPlan("IVF1,SQ8", 1)
    assert ann.plan_index("HNSW32", 100) == ann.IndexPlan("IDMap,HNSW32", 0)
    assert ann.plan_index("Flat", 100).factory == "IDMap,Flat"


def test_too_many_lists_warns_and_falls_back(caplog):
    with caplog.at_level("WARNING"):
        plan = ann.plan_index("IVF1024,Flat", 100)
    assert plan.nlist == 2
    assert "too few for 1024 inverted lists" in caplog.text


@pytest.mark.parametrize("factory", ["Flat", "IVF,Flat", "IVF,SQ8", "HNSW32"])
def test_search_finds_the_exact_neighbours(factory):
    vectors = unit_vectors(4000)
    index, plan = build(factory, vectors)
    queries = unit_vectors(50, seed=1)
    _, exact = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
    _, found = ann.search_vectors(index, queries, 10, nprobe=plan.nlist or None)
    assert ann.overlap_at_k(found, exact, 10) >= (0.9 if "SQ8" in factory or "HNSW" in factory else 0.999)


def test_nprobe_is_passed_per_call_not_left_at_one():
    vectors = unit_vectors(8000)
    index, plan = build(None, vectors)
    queries = unit_vectors(100, seed=2)
    _, exact = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
    low = ann.overlap_at_k(ann.search_vectors(index, queries, 10, nprobe=1)[1], exact, 10)
    high = ann.overlap_at_k(ann.search_vectors(index, queries, 10, nprobe=plan.nlist)[1], exact, 10)
    assert high == 1.0 and low < high
    assert ann.ivf_part(index).nprobe == 1  # the index itself was never mutated


def test_calibrated_nprobe_reaches_its_target():
    vectors = unit_vectors(8000)
    index, _ = build(None, vectors)
    probes = vectors[:200]
    _, exact = faiss.knn(probes, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
    nprobe = ann.calibrate_nprobe(index, probes, exact, target=0.95)
    assert ann.overlap_at_k(ann.search_vectors(index, probes, 10, nprobe)[1], exact, 10) >= 0.95
    if nprobe > 1:
        assert ann.overlap_at_k(ann.search_vectors(index, probes, 10, nprobe // 2)[1], exact, 10) < 0.95


def test_k_larger_than_the_index_returns_what_exists():
    vectors = unit_vectors(50)
    index, _ = build("Flat", vectors)
    scores, ids = ann.search_vectors(index, vectors[:2], 500, None)
    assert ids.shape == (2, 50) and (ids >= 0).all()


def test_faiss_errors_become_clear_build_errors():
    with pytest.raises(IndexBuildError, match="FAISS cannot build 'IDMap,Nonsense42'"):
        ann.train_index(ann.plan_index("Nonsense42", 100), 32, unit_vectors(100))
    with pytest.raises(IndexBuildError, match="cannot train .* on 100 vectors"):
        ann.train_index(ann.plan_index("IVF,PQ16", 100), 32, unit_vectors(100))


def test_overlap_at_k_ignores_padding():
    exact = np.array([[1, 2, 3, -1]])
    assert ann.overlap_at_k(np.array([[3, 9, 1, -1]]), exact, 4) == pytest.approx(2 / 3)
