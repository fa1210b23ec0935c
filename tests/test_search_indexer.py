"""Building index directories: self-describing, atomic, refusing bad input before publishing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import CorpusError, IndexBuildError, InvalidInputError
from dualsearch.index import layout
from dualsearch.index.manifest import Manifest
from dualsearch.index.vectors import open_vectors
from dualsearch.write.build import IndexConfig, build_index
from tests.helpers import live_segment_dir


def visible(directory):
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def test_index_directory_is_self_describing(tiny_index, fake_encoder):
    version = layout.current_version_dir(tiny_index)
    manifest = Manifest.read(version)
    identity = fake_encoder.identity()
    assert manifest.weights_sha256 == identity.weights_sha256 and manifest.dimension == identity.dimension
    assert manifest.document_count == 26
    assert manifest.factory == "IVF1,Flat" and manifest.nlist == 1 and manifest.default_nprobe == 1
    assert manifest.metric == "inner_product" and manifest.corpus == "tiny"
    assert {"faiss-cpu", "torch", "python"} <= set(manifest.library_versions)
    (segment,) = manifest.segment_entries()  # a build writes one segment
    assert (segment.documents, segment.passages, segment.deleted_count) == (26, 26, 0)
    assert {layout.INDEX_FILE, layout.STORE_FILE, layout.VECTORS_FILE} < set(segment.files)
    assert any(name.startswith("lexical/") for name in segment.files)  # the BM25 postings are checksummed too
    assert manifest.passage_count == 26 and manifest.passages == {"window": 512, "stride": 512, "max_passages": None}
    assert manifest.search["mode"] == "hybrid" and manifest.lexical["library"] == "dualsearch.index.lexical_segments"
    layout.verify_segments(tiny_index, [segment])  # checksums hold
    assert sorted(path.name for path in version.iterdir()) == ["manifest.json"]  # the segment holds the files
    vectors = open_vectors(live_segment_dir(tiny_index), manifest.dimension)
    assert vectors.shape == (26, 256)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_rebuilding_publishes_a_new_version_and_keeps_one_previous(tmp_path, fake_encoder):
    index_dir = tmp_path / "idx"
    for _ in range(3):
        build_index(read_corpus("tiny"), index_dir, fake_encoder)
    assert (index_dir / layout.CURRENT_NAME).read_text().split()[0] == "v000003"
    assert visible(index_dir) == ["CURRENT", "segments", "v000002", "v000003"]
    assert visible(index_dir / "segments") == ["s000002", "s000003"]  # those the kept versions name
    assert not list(index_dir.glob(".build-*")) and not (index_dir / ".chunks").exists()


def test_bad_record_midway_leaves_nothing_half_indexed(tmp_path, fake_encoder):
    index_dir = tmp_path / "idx"
    build_index(read_corpus("tiny"), index_dir, fake_encoder)
    before = visible(index_dir)
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text('{"_id": "1", "text": "fine"}\n' * 1 + '{"_id": "2", "text": ""}\n')
    with pytest.raises(CorpusError, match=r"bad\.jsonl:2"):
        build_index(read_corpus(corpus), index_dir, fake_encoder, IndexConfig(chunk_size=1))
    assert visible(index_dir) == before and not list(index_dir.glob(".build-*"))  # live version unchanged


def test_empty_corpus_and_foreign_directory_are_refused(tmp_path, fake_encoder):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(IndexBuildError, match="no documents"):
        build_index(read_corpus(tmp_path / "empty.jsonl"), tmp_path / "idx", fake_encoder)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(InvalidInputError, match="not empty and not a dualsearch index"):
        build_index(read_corpus("tiny"), foreign, fake_encoder)
    assert [p.name for p in foreign.iterdir()] == ["cat.jpg"]


@pytest.mark.parametrize("factory", ["Flat", "HNSW16", "IVF4096,Flat", "IVF,SQ8"])
def test_any_factory_and_fallback_for_small_corpora(tmp_path, fake_encoder, factory):
    report = build_index(read_corpus("tiny"), tmp_path / "idx", fake_encoder, IndexConfig(factory=factory))
    assert report.document_count == 26
    assert ("IVF" in report.factory) == ("IVF" in factory)


def test_unsupported_factory_for_the_corpus_is_a_clear_error(tmp_path, fake_encoder):
    with pytest.raises(IndexBuildError, match="cannot train"):
        build_index(read_corpus("tiny"), tmp_path / "idx", fake_encoder, IndexConfig(factory="IVF,PQ8"))
    assert not (tmp_path / "idx" / layout.CURRENT_NAME).exists()


def test_manifest_rejects_unknown_fields_and_other_formats(tiny_index):
    version = layout.current_version_dir(tiny_index)
    data = json.loads((version / "manifest.json").read_text())
    (version / "manifest.json").write_text(json.dumps({**data, "colour": "blue"}))
    with pytest.raises(Exception, match="unknown fields"):
        Manifest.read(version)
    (version / "manifest.json").write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(Exception, match="format 99; this dualsearch reads format 3: a newer dualsearch wrote it"):
        Manifest.read(version)
    (version / "manifest.json").write_text(json.dumps({**data, "format_version": 1}))
    with pytest.raises(Exception, match="format 1; .*convert it with `dualsearch upgrade"):
        Manifest.read(version)


def test_config_validation():
    with pytest.raises(InvalidInputError):
        IndexConfig(chunk_size=0)
    with pytest.raises(InvalidInputError):
        IndexConfig(nprobe_target=1.5)


def test_index_corpus_validates_everything_before_encoding(tmp_path):
    from dualsearch.write.build import index_corpus
    from tests.helpers import CountingEncoder

    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        "".join(f'{{"_id": "{i}", "text": "doc {i}"}}\n' for i in range(600)) + '{"_id": "5", "text": "dup"}\n'
    )
    encoder = CountingEncoder()
    with pytest.raises(CorpusError, match=r"c\.jsonl:601: duplicate document id '5'"):
        index_corpus(corpus, tmp_path / "idx", encoder)
    assert encoder.encoded == [] and not (tmp_path / "idx" / "CURRENT").exists()
    report, skipped = index_corpus(corpus, tmp_path / "idx", encoder, skip_invalid=True)
    assert report.document_count == 600 and len(skipped) == 1 and "c.jsonl:601" in skipped[0]


def test_building_over_an_index_copies_vectors_the_document_tower_would_encode_again(tmp_path):
    from dualsearch.read.searcher import Searcher
    from tests.helpers import CountingEncoder

    index_dir = tmp_path / "index"
    build_index(read_corpus("tiny"), index_dir, CountingEncoder(), IndexConfig(factory="Flat"))
    first = np.array(open_vectors(live_segment_dir(index_dir), 256))
    new_query_tower = CountingEncoder(query_variant="tuned")
    build_index(read_corpus("tiny"), index_dir, new_query_tower, IndexConfig(factory="Flat"))
    assert new_query_tower.encoded == []  # the document tower did not change: nothing to encode
    np.testing.assert_array_equal(np.array(open_vectors(live_segment_dir(index_dir), 256)), first)
    with Searcher.open(index_dir, encoder=new_query_tower) as searcher:
        assert searcher.search("green tea", k=1)[0].doc_id == "tea-green"
    other_towers = CountingEncoder(salt="other")
    build_index(read_corpus("tiny"), index_dir, other_towers, IndexConfig(factory="Flat"))
    assert len(other_towers.encoded) == 26


def test_building_over_a_damaged_index_encodes_everything_again(tmp_path):
    from tests.helpers import CountingEncoder

    index_dir = tmp_path / "index"
    build_index(read_corpus("tiny"), index_dir, CountingEncoder(), IndexConfig(factory="Flat"))
    (live_segment_dir(index_dir) / layout.VECTORS_FILE).write_bytes(b"damaged")
    encoder = CountingEncoder()
    build_index(read_corpus("tiny"), index_dir, encoder, IndexConfig(factory="Flat"))
    assert len(encoder.encoded) == 26  # a rebuild is how a damaged index is repaired
