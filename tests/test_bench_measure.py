"""bench.ann_compare and bench.encoding helpers on tiny seeded data (correctness, never their timings)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.ann_compare import build, compare_indexes, effort_values, measure, nprobe_values
from bench.ann_compare import parse_args as ann_args
from bench.encoding import STAGES, length_stats, stage_costs, throughput
from bench.encoding import parse_args as encoding_args
from bench.scale import queries_like, synthetic_vectors


@pytest.fixture
def toy(tmp_path):
    vectors = synthetic_vectors(tmp_path / "v.f32", 3000)
    return vectors, queries_like(vectors, 40)


def test_effort_grids():
    assert nprobe_values(1) == [1] and nprobe_values(8) == [1, 2, 4, 8] and nprobe_values(10) == [1, 2, 4, 8, 10]
    assert nprobe_values(5000, cap=4) == [1, 2, 4]
    assert effort_values(None, 0) == [None] and effort_values("efSearch", 0)[0] == 16


def test_compare_indexes_exact_where_it_must_be(toy, tmp_path):
    vectors, queries = toy
    rows = compare_indexes(
        vectors, queries, ["Flat", "IVF-Flat", "HNSW32"], tmp_path, single_queries=5, repeats=1, hnsw_vectors=2000
    )
    by_name = {row["index"]: row for row in rows}
    assert by_name["Flat"]["runs"][0]["overlap@10"] == pytest.approx(1.0)
    ivf = by_name["IVF-Flat"]
    assert ivf["factory"] == f"IVF{ivf['nlist']},Flat" and ivf["runs"][-1]["effort"] == ivf["nlist"]
    assert ivf["runs"][-1]["overlap@10"] >= 0.99  # every list probed: exact up to ties
    assert ivf["runs"][0]["overlap@10"] < ivf["runs"][-1]["overlap@10"]
    # k-means over thousands of vectors takes measurable time, and so does building IVF search parameters
    assert ivf["build_seconds"] > 0 and ivf["engine_parameter_overhead_ms"] > 0
    hnsw = by_name["HNSW32"]
    assert hnsw["vectors"] == 2000 and hnsw["runs"][-1]["overlap@10"] >= 0.95
    for row in rows:
        assert row["index_bytes"] > 0
        for run in row["runs"]:
            assert run["single_p50_ms"] <= run["single_p95_ms"] and run["batch_queries_per_second"] > 0


def test_measure_restores_the_faiss_thread_count_and_keeps_to_its_budget(toy):
    import faiss

    vectors, queries = toy
    index, _ = build("IVF,Flat", vectors)
    before = faiss.omp_get_max_threads()
    run = measure(index, queries, np.zeros((len(queries), 10), np.int64), 2, single_queries=3, repeats=1)
    assert faiss.omp_get_max_threads() == before and run["single_queries"] == 3 and run["batch_repeats"] == 1
    run = measure(
        index, queries, np.zeros((len(queries), 10), np.int64), 2, single_queries=40, repeats=5, budget_seconds=0
    )
    assert run["batch_repeats"] == 1 and run["single_queries"] == 20


def test_ann_compare_arguments():
    args = ann_args(["--count", "5000", "--indexes", "Flat", "HNSW32", "--datasets", "synthetic"])
    assert args.count == 5000 and args.indexes == ["Flat", "HNSW32"] and args.datasets == ["synthetic"]
    with pytest.raises(SystemExit):
        ann_args(["--repeats", "0"])
    with pytest.raises(SystemExit):
        ann_args(["--indexes", "LSH"])


def test_encoding_arguments_and_length_stats():
    args = encoding_args(["--batch-sizes", "1", "4", "--lengths", "16"])
    assert args.batch_sizes == [1, 4] and args.lengths == [16]
    with pytest.raises(SystemExit):
        encoding_args(["--lengths", "0"])
    assert length_stats([1, 2, 3, 4, 5]) == {"median": 3.0, "p95": 4.8, "max": 5}


@pytest.mark.slow
def test_throughput_restores_batch_size_and_length(tiny_encoder):
    saved = (tiny_encoder.batch_size, tiny_encoder.model.max_seq_length)
    row = throughput(tiny_encoder, "documents", ["green tea leaves", "black tea", "mars rover"], 2, 16)
    assert row["texts"] == 3 and row["texts_per_second"] > 0 and row["max_seq_length"] == 16
    assert (tiny_encoder.batch_size, tiny_encoder.model.max_seq_length) == saved


@pytest.mark.slow
def test_staged_query_matches_encode_queries(tiny_encoder, tmp_path):
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.read.searcher import Searcher
    from dualsearch.write.build import build_index

    build_index(read_corpus("tiny"), tmp_path / "index", tiny_encoder, corpus_name="tiny")
    searcher = Searcher.open(tmp_path / "index", encoder=tiny_encoder)
    try:
        costs = stage_costs(searcher, ["how to brew tea", "planets of the solar system", "parse arguments"])
    finally:
        searcher.close()
    assert costs["staged_vs_encode_queries_max_abs_difference"] < 1e-5  # the staged path is the real query path
    assert set(costs["ms"]) == {*STAGES, "end_to_end"} and costs["slowest_stage"] in STAGES
    assert all(0 <= costs["ms"][stage]["p50"] <= costs["ms"][stage]["p95"] for stage in STAGES)
    assert costs["ms"]["end_to_end"]["p50"] > 0
