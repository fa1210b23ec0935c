"""Indexes whose inverted lists live in a memory-mapped file: same answers as in memory, built from
shards, checksummed, relocatable, and kept on disk by re-indexing."""

from __future__ import annotations

import json
import random
import shutil

import faiss
import numpy as np
import pytest

from dualsearch.errors import IndexCorruptError, InvalidInputError
from dualsearch.index import ann, layout, ondisk
from dualsearch.index.manifest import Manifest
from dualsearch.read.searcher import Searcher
from dualsearch.write.build import IndexConfig, index_corpus
from dualsearch.write.reindex import reindex
from tests.helpers import live_segment_dir

WORDS = "solar wind river stone glass paper cloud orbit garden engine copper violin harbor forest ember".split()
QUERIES = ["solar orbit", "paper garden", "copper engine harbor", "violin ember", "stone river glass"]


@pytest.fixture
def corpus(tmp_path):
    """400 documents: enough for an IVF index with several lists (10) and shards of a few lists' worth."""
    rng = random.Random(7)
    path = tmp_path / "corpus.jsonl"
    rows = [{"id": f"d{i:03d}", "text": " ".join(rng.choices(WORDS, k=12))} for i in range(400)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def dense_results(index_dir, encoder, nprobe=None):
    with Searcher.open(index_dir, encoder=encoder) as searcher:
        return [
            [(r.doc_id, round(r.score, 5)) for r in searcher.search(q, k=10, mode="dense", nprobe=nprobe)]
            for q in QUERIES
        ]


def test_on_disk_index_answers_as_the_in_memory_one(tmp_path, corpus, fake_encoder, monkeypatch):
    monkeypatch.setattr(ondisk, "SHARD_VECTORS", 64)  # 400 vectors: 7 shards merged
    in_memory, on_disk = tmp_path / "memory", tmp_path / "disk"
    index_corpus(corpus, in_memory, fake_encoder)
    report, _ = index_corpus(corpus, on_disk, fake_encoder, config=IndexConfig(on_disk=True))
    manifest = Manifest.read(report.version_dir)
    assert manifest.on_disk and manifest.nlist == 10
    (segment,) = manifest.segment_entries()
    assert layout.IVFDATA_FILE in segment.files  # checksummed like every other file
    assert not (live_segment_dir(on_disk) / ".shards").exists()  # shards are merged, then removed
    assert Manifest.read(layout.current_version_dir(in_memory)).default_nprobe == manifest.default_nprobe
    for nprobe in (1, 3, None):
        assert dense_results(on_disk, fake_encoder, nprobe) == dense_results(in_memory, fake_encoder, nprobe)


def test_on_disk_index_is_mapped_read_only_and_moves_with_its_directory(tmp_path, corpus, fake_encoder):
    index_dir = tmp_path / "disk"
    index_corpus(corpus, index_dir, fake_encoder, config=IndexConfig(on_disk=True))
    expected = dense_results(index_dir, fake_encoder)
    moved = tmp_path / "elsewhere" / "index"
    moved.parent.mkdir()
    shutil.move(index_dir, moved)  # the lists file is found beside the index file, not at its build path
    with Searcher.open(moved, encoder=fake_encoder) as searcher:
        lists = faiss.extract_index_ivf(searcher.store.segments[0].index).invlists
        assert faiss.downcast_InvertedLists(lists).read_only
    assert dense_results(moved, fake_encoder) == expected
    layout.verify_segments(moved, Manifest.read(layout.current_version_dir(moved)).segment_entries())  # nothing written


def test_reindex_keeps_the_lists_on_disk_and_leaves_the_live_file_untouched(tmp_path, corpus, fake_encoder):
    index_dir = tmp_path / "disk"
    first, _ = index_corpus(corpus, index_dir, fake_encoder, config=IndexConfig(on_disk=True))
    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    rows = rows[10:] + [{"id": "new", "text": "a violin made of copper and ember"}]  # 10 deleted, 1 added
    rows[0]["text"] = "changed: solar orbit of a glass river"
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows))
    report = reindex(index_dir, corpus, fake_encoder)
    assert (report.added, report.updated, report.deleted) == (1, 1, 10) and not report.retrained
    manifest = Manifest.read(report.version_dir)
    assert manifest.on_disk and manifest.document_count == 391
    assert all(layout.IVFDATA_FILE in segment.files for segment in manifest.segment_entries())
    old, new = manifest.segment_entries()  # the first segment kept, less its 11 rows, and one new
    assert (old.deleted_count, new.documents) == (11, 2)
    assert {name: old.files[name] for name in old.files if name != old.deleted} == {
        name: value for name, value in Manifest.read(first.version_dir).segment_entries()[0].files.items()
    }  # centroids reused, the live segment's files not rewritten
    layout.verify_segments(index_dir, [old, new])
    with Searcher.open(index_dir, encoder=fake_encoder) as searcher:
        assert searcher.search("a violin made of copper and ember", k=1, mode="dense")[0].doc_id == "new"
        found = {r.doc_id for q in QUERIES for r in searcher.search(q, k=50, mode="dense")}
        assert not found & {f"d{i:03d}" for i in range(10)}


def test_a_damaged_lists_file_is_refused(tmp_path, corpus, fake_encoder):
    index_dir = tmp_path / "disk"
    report, _ = index_corpus(corpus, index_dir, fake_encoder, config=IndexConfig(on_disk=True))
    path = live_segment_dir(index_dir) / layout.IVFDATA_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="index.ivfdata"):
        Searcher.open(index_dir, encoder=fake_encoder)


def test_on_disk_needs_an_ivf_index():
    with pytest.raises(InvalidInputError, match="IVF"):
        IndexConfig(factory="HNSW32", on_disk=True)


def test_emptied_keeps_the_centroids_and_frees_the_lists(tmp_path):
    vectors = np.random.default_rng(0).standard_normal((500, 8)).astype(np.float32)
    trained = ann.train_index(ann.IndexPlan("IVF8,Flat", 8), 8, vectors)
    centroids = faiss.extract_index_ivf(trained).quantizer.reconstruct_n(0, 8)
    ondisk.add_in_shards(trained, vectors, tmp_path, shard_vectors=100)
    faiss.write_index(trained, str(tmp_path / layout.INDEX_FILE))
    before = (tmp_path / layout.IVFDATA_FILE).read_bytes()
    empty = ondisk.emptied(ondisk.read_index(tmp_path / layout.INDEX_FILE, on_disk=True))
    assert empty.ntotal == 0 and empty.is_trained
    empty.add_with_ids(vectors[:5], np.arange(5))  # into memory, not into the mapped file
    assert (tmp_path / layout.IVFDATA_FILE).read_bytes() == before
    after = faiss.extract_index_ivf(empty).quantizer.reconstruct_n(0, 8)
    np.testing.assert_array_equal(after, centroids)


def test_cli_builds_on_disk_and_search_json_stays_parseable(tmp_path, tiny_model_dir, capfd):
    from dualsearch.cli import main

    index_dir = tmp_path / "idx"
    assert main(["index", "tiny", "--out", str(index_dir), "--model", str(tiny_model_dir), "--on-disk"]) == 0
    assert Manifest.read(layout.current_version_dir(index_dir)).on_disk
    capfd.readouterr()
    assert main(["search", str(index_dir), "espresso", "-k", "2", "--json"]) == 0
    output = capfd.readouterr().out  # file-descriptor level: FAISS's own prints would land here
    assert [r["rank"] for r in json.loads(output)["results"]] == [1, 2]
