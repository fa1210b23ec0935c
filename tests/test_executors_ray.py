"""Encoding on Ray actors (``--executor ray``): the same index as a local build, a lost worker retried,
and a killed driver leaving the old version and checkpoints a rerun resumes from."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from dualsearch.errors import InvalidInputError
from dualsearch.index.vectors import open_vectors
from dualsearch.read.searcher import Searcher
from dualsearch.testing import CrashingOnceEncoder, FakeEncoder
from dualsearch.write.build import IndexConfig, index_corpus
from dualsearch.write.executors import LocalExecutor, RayExecutor, make_executor
from dualsearch.write.reindex import reindex
from tests.helpers import live_segment_dir

pytestmark = pytest.mark.slow  # trains, exports or starts Ray: seconds a test (make test-fast skips it)

QUERIES = ["solar eclipse", "decaf coffee", "the largest planet", "tea leaves"]
SMALL_CHUNKS = IndexConfig(chunk_size=3)  # 26 documents: 9 chunks, so several are in flight at once


def version_contents(index_dir):
    """Every live document (id, text), its passage count and the live passage vectors, in row order."""
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        segments = searcher.store
        documents = [(d.id, d.text) for d in segments.iter_documents()]
        passages = segments.passage_counts()[segments.live]
        return documents, list(passages), np.array(segments.vectors[segments.live_passage_rows()])


def results(index_dir, encoder):
    with Searcher.open(index_dir, encoder=encoder) as searcher:
        return [[(r.doc_id, round(r.score, 5)) for r in searcher.search(q, k=5)] for q in QUERIES]


def test_a_ray_build_is_the_local_build(tmp_path, ray_address):
    encoder = FakeEncoder(window=12)  # several documents take more than one passage
    local, _ = index_corpus("tiny", tmp_path / "local", encoder, config=SMALL_CHUNKS)
    executor = RayExecutor(encoder, workers=2)
    try:
        on_ray, _ = index_corpus("tiny", tmp_path / "ray", encoder, config=SMALL_CHUNKS, executor=executor)
    finally:
        executor.close()
    documents, passages, vectors = version_contents(tmp_path / "ray")
    expected_documents, expected_passages, expected_vectors = version_contents(tmp_path / "local")
    assert documents == expected_documents and passages == expected_passages and len(vectors) > 26
    np.testing.assert_allclose(vectors, expected_vectors, atol=1e-6)
    assert results(tmp_path / "ray", encoder) == results(tmp_path / "local", encoder)
    assert on_ray.default_nprobe == local.default_nprobe


def test_reindex_on_ray_encodes_only_what_changed(tmp_path, ray_address, fake_encoder):
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"id": f"d{i}", "text": f"words about topic {i % 5} item {i}"} for i in range(40)]
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows))
    index_corpus(corpus, tmp_path / "idx", fake_encoder, config=SMALL_CHUNKS)
    lines = corpus.read_text().splitlines()
    lines[7] = json.dumps({"id": "d7", "text": "a changed document about eclipses"})
    corpus.write_text("\n".join(lines[:-2] + [json.dumps({"id": "new", "text": "brand new text"})]) + "\n")
    executor = make_executor("ray", fake_encoder, workers=2)
    try:
        report = reindex(tmp_path / "idx", corpus, fake_encoder, executor=executor)
    finally:
        executor.close()
    assert (report.added, report.updated, report.deleted, report.encoded) == (1, 1, 2, 2)
    with Searcher.open(tmp_path / "idx", encoder=fake_encoder) as searcher:
        assert searcher.search("a changed document about eclipses", k=1, mode="dense")[0].doc_id == "d7"
        assert len(searcher) == 39


def test_a_worker_killed_mid_chunk_is_restarted_and_the_run_is_complete(tmp_path, ray_address):
    marker = tmp_path / "kill-the-first-worker-that-encodes"
    marker.touch()
    encoder = CrashingOnceEncoder(str(marker), window=12)
    executor = RayExecutor(encoder, workers=2)
    try:
        index_corpus("tiny", tmp_path / "ray", encoder, config=SMALL_CHUNKS, executor=executor)
    finally:
        executor.close()
    assert not marker.exists()  # a worker did die
    index_corpus("tiny", tmp_path / "local", FakeEncoder(window=12), config=SMALL_CHUNKS)
    documents, passages, vectors = version_contents(tmp_path / "ray")
    expected_documents, expected_passages, expected_vectors = version_contents(tmp_path / "local")
    assert documents == expected_documents and passages == expected_passages
    np.testing.assert_allclose(vectors, expected_vectors, atol=1e-6)


def test_local_is_the_default_and_ray_without_the_extra_says_how_to_get_it(monkeypatch, fake_encoder):
    assert isinstance(make_executor("local", fake_encoder), LocalExecutor)
    with pytest.raises(InvalidInputError, match="unknown executor"):
        make_executor("dask", fake_encoder)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(InvalidInputError, match=r"dualsearch\[ray\]"):
        make_executor("ray", fake_encoder)


@pytest.mark.slow
def test_a_driver_killed_during_a_ray_reindex_leaves_the_old_version_and_a_rerun_resumes(
    tmp_path, tiny_model_dir, ray_address
):
    from dualsearch.cli import main
    from tests.helpers import index_contents, run_cli, write_crash_corpus

    old = write_crash_corpus(tmp_path / "old.jsonl", "old")
    new = write_crash_corpus(tmp_path / "new.jsonl", "new")
    index_dir = tmp_path / "idx"
    assert main(["index", str(tmp_path / "old.jsonl"), "--out", str(index_dir), "--model", str(tiny_model_dir)]) == 0
    on_ray = ["--executor", "ray", "--ray-address", ray_address, "--workers", "2"]
    killed = run_cli("reindex", str(index_dir), "--corpus", str(tmp_path / "new.jsonl"), *on_ray, kill_at="encoding:2")
    assert killed.returncode == -9, killed.stderr
    assert index_contents(index_dir, tiny_model_dir) == old
    rerun = run_cli("reindex", str(index_dir), "--corpus", str(tmp_path / "new.jsonl"), *on_ray)
    assert rerun.returncode == 0, rerun.stderr
    assert "from an interrupted run" in rerun.stdout and ", 0 of them from" not in rerun.stdout
    assert index_contents(index_dir, tiny_model_dir) == new


@pytest.mark.slow
@pytest.mark.data
def test_scifact_documents_on_ray_match_a_local_build_with_the_default_towers(tmp_path, ray_address):
    from dualsearch.corpora import beir
    from dualsearch.towers.backends import load_encoder
    from tests.helpers import beir_data

    scifact = beir_data("scifact")
    corpus = tmp_path / "scifact-300.jsonl"
    with open(scifact / "corpus.jsonl", encoding="utf-8") as source:
        corpus.write_text("".join(next(source) for _ in range(300)), encoding="utf-8")
    encoder = load_encoder()  # the default towers and backend, as `dualsearch index` uses them
    index_corpus(corpus, tmp_path / "local", encoder)
    executor = RayExecutor(encoder, workers=2)
    try:
        index_corpus(corpus, tmp_path / "ray", encoder, executor=executor)
    finally:
        executor.close()
    local, ray = (live_segment_dir(tmp_path / name) for name in ("local", "ray"))
    local_vectors, ray_vectors = open_vectors(local, 384), open_vectors(ray, 384)
    assert local_vectors.shape == ray_vectors.shape and len(local_vectors) >= 300
    cosines = np.sum(np.asarray(local_vectors) * np.asarray(ray_vectors), axis=1)
    assert cosines.min() > 0.9999  # one thread per worker against two locally: summation order only
    queries = list(beir.read_queries(scifact).values())[:20]  # texts only, never metadata
    with Searcher.open(tmp_path / "local", encoder=encoder) as a, Searcher.open(tmp_path / "ray", encoder=encoder) as b:
        assert [[r.doc_id for r in a.search(q, k=10)] for q in queries] == [
            [r.doc_id for r in b.search(q, k=10)] for q in queries
        ]


def test_workers_that_load_other_towers_are_refused_before_encoding(tmp_path, ray_address, monkeypatch):
    import functools

    from dualsearch.errors import IndexBuildError
    from dualsearch.write import executors

    # as if a node had other files at the model path: its actors load other document towers
    monkeypatch.setattr(executors, "towers_loader", lambda encoder: functools.partial(FakeEncoder, salt="other"))
    executor = RayExecutor(FakeEncoder(), workers=1)
    try:
        with pytest.raises(IndexBuildError, match="other towers than this process"):
            index_corpus("tiny", tmp_path / "idx", FakeEncoder(), executor=executor)
    finally:
        executor.close()
    assert not (tmp_path / "idx" / "CURRENT").exists()
