"""Re-indexing, add and delete, the retraining policy, the writer lock, bad input (in-process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dualsearch.corpora.sources import TINY_CORPUS_DIR, read_corpus
from dualsearch.errors import CorpusError, IndexCorruptError, IndexLockedError, InvalidInputError
from dualsearch.index import layout
from dualsearch.index.manifest import Manifest
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import IndexConfig, build_index
from dualsearch.write.lock import IndexLock
from dualsearch.write.reindex import add_documents, delete_documents, reindex
from tests.helpers import CountingEncoder, live_segment_dir


def tiny_rows():
    return [json.loads(line) for line in (TINY_CORPUS_DIR / "corpus.jsonl").read_text().splitlines()]


def write_rows(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def index_dir(tmp_path):
    directory = tmp_path / "idx"
    build_index(read_corpus("tiny"), directory, FakeEncoder())
    return directory


def doc_ids(index_dir, encoder=None):
    return sorted(r.doc_id for r in Searcher.open(index_dir, encoder=encoder or FakeEncoder()).search("x", k=10_000))


def test_reindex_adds_updates_deletes_and_encodes_only_what_changed(index_dir, tmp_path):
    rows = tiny_rows()
    rows[0]["text"] += " Now with jasmine."
    removed = rows.pop(1)["_id"]
    rows.append({"_id": "kites", "title": "Kites", "text": "Kites fly on the wind."})
    encoder = CountingEncoder()
    report = reindex(index_dir, write_rows(tmp_path / "c.jsonl", rows), encoder)
    assert (report.added, report.updated, report.deleted, report.unchanged) == (1, 1, 1, 24)
    assert sorted(encoder.encoded) == sorted([f"{rows[0]['title']} {rows[0]['text']}", "Kites Kites fly on the wind."])
    assert removed not in doc_ids(index_dir) and "kites" in doc_ids(index_dir)
    assert Searcher.open(index_dir, encoder=encoder).search("jasmine", k=1)[0].doc_id == rows[0]["_id"]
    again = reindex(index_dir, tmp_path / "c.jsonl", encoder)
    assert (again.added, again.updated, again.deleted, again.unchanged, again.encoded) == (0, 0, 0, 26, 0)


def test_reindex_keeps_every_setting_the_index_was_built_with(tmp_path):
    settings = {"chunk_size": 5, "seed": 3, "nprobe_target": 0.5, "calibration_queries": 7}
    directory = tmp_path / "idx"
    build_index(read_corpus("tiny"), directory, FakeEncoder(), config=IndexConfig(**settings))
    rows = tiny_rows()
    rows[0]["text"] += " Now with jasmine."
    reindex(directory, write_rows(tmp_path / "c.jsonl", rows), FakeEncoder(), retrain=True)
    build = Manifest.read(layout.current_version_dir(directory)).build
    assert {name: build[name] for name in settings} == settings


def test_new_towers_reencode_everything_and_retrain(index_dir):
    encoder = CountingEncoder(salt="retrained")
    report = reindex(index_dir, TINY_CORPUS_DIR, encoder)
    assert report.encoded == 26 and report.retrained and report.unchanged == 26
    manifest = Manifest.read(layout.current_version_dir(index_dir))
    assert manifest.weights_sha256 == encoder.identity().weights_sha256 and manifest.added_since_training == 0
    Searcher.open(index_dir, encoder=encoder)  # the index now belongs to the new towers


def test_retraining_policy_follows_additions(tmp_path):
    rows = [{"_id": f"d{i}", "text": f"document number {i} about topic {i % 7}"} for i in range(400)]
    index_dir = tmp_path / "idx"
    build_index(read_corpus(write_rows(tmp_path / "a.jsonl", rows)), index_dir, FakeEncoder())
    first = Manifest.read(layout.current_version_dir(index_dir))
    assert first.nlist == 10 and first.trained_count == 400
    rows += [{"_id": f"n{i}", "text": f"new text {i}"} for i in range(100)]
    kept = reindex(index_dir, write_rows(tmp_path / "b.jsonl", rows), FakeEncoder())
    manifest = Manifest.read(layout.current_version_dir(index_dir))
    assert not kept.retrained and manifest.trained_at == first.trained_at and manifest.added_since_training == 100
    rows += [{"_id": f"m{i}", "text": f"more text {i}"} for i in range(150)]
    retrained = reindex(index_dir, write_rows(tmp_path / "c.jsonl", rows), FakeEncoder())
    manifest = Manifest.read(layout.current_version_dir(index_dir))
    assert retrained.retrained and manifest.trained_count == 650 and manifest.added_since_training == 0
    assert manifest.nlist == 16  # re-derived for 650 documents


def test_bad_record_stops_before_anything_is_encoded(index_dir, tmp_path):
    rows = tiny_rows() + [{"_id": "tea-green", "text": "a second tea-green"}, {"_id": "z", "text": ""}]
    encoder, before = CountingEncoder(), layout.current_version_dir(index_dir)
    with pytest.raises(CorpusError, match=r"c\.jsonl:27: duplicate document id 'tea-green'"):
        reindex(index_dir, write_rows(tmp_path / "c.jsonl", rows), encoder)
    assert encoder.encoded == [] and layout.current_version_dir(index_dir) == before
    report = reindex(index_dir, tmp_path / "c.jsonl", encoder, skip_invalid=True)
    assert [m.split(": ", 1)[0].rsplit(":", 1)[1] for m in report.skipped] == ["27", "28"]
    assert report.unchanged == 26 and report.encoded == 0


def test_add_and_delete(index_dir, tmp_path):
    extra = write_rows(
        tmp_path / "extra.jsonl",
        [
            {"_id": "kites", "text": "kites on the wind"},
            {"_id": "tea-green", "title": "Green tea", "text": "Rewritten."},
        ],
    )
    report = add_documents(index_dir, extra, FakeEncoder())
    assert (report.added, report.updated, report.unchanged, report.deleted) == (1, 1, 25, 0)
    report = delete_documents(index_dir, ["kites", "astro-mars"], FakeEncoder())
    assert report.deleted == 2 and len(doc_ids(index_dir)) == 25
    with pytest.raises(InvalidInputError, match="holds no document with id 'nope'"):
        delete_documents(index_dir, ["nope", "tea-black"], FakeEncoder())
    assert "tea-black" in doc_ids(index_dir)


def test_open_searcher_keeps_answering_during_and_after_a_reindex(index_dir, tmp_path):
    searcher = Searcher.open(index_dir, encoder=FakeEncoder())
    one = write_rows(tmp_path / "one.jsonl", [{"_id": "only", "text": "just one"}])
    reindex(index_dir, one, FakeEncoder(), allow_mass_delete=True)
    assert len(searcher.search("tea", k=100)) == 26
    assert [r.doc_id for r in searcher.reload().search("tea", k=100)] == ["only"]


def test_a_second_writer_is_refused_with_the_holder_named(index_dir):
    with IndexLock(index_dir):
        with pytest.raises(IndexLockedError, match=rf"being written by process {os.getpid()} "):
            reindex(index_dir, TINY_CORPUS_DIR, FakeEncoder())
    reindex(index_dir, TINY_CORPUS_DIR, FakeEncoder())  # released


def test_a_stale_lock_of_a_dead_process_is_taken_over(index_dir, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (index_dir / ".lock").write_text(
        json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "command": "x"})
    )
    with caplog.at_level("WARNING"):
        reindex(index_dir, TINY_CORPUS_DIR, FakeEncoder())
    assert f"process {int(dead.stdout)} died while writing" in caplog.text


def test_a_damaged_live_version_is_not_built_upon(index_dir):
    store = live_segment_dir(index_dir) / layout.STORE_FILE
    store.write_bytes(store.read_bytes()[:-100])
    with pytest.raises(IndexCorruptError, match="documents.sqlite has"):
        reindex(index_dir, TINY_CORPUS_DIR, FakeEncoder())


@pytest.mark.parametrize("factory", ["Flat", "HNSW16", "IVF,SQ8", pytest.param("IVF2,PQ8x4", marks=pytest.mark.slow)])
def test_reindex_keeps_any_index_type_working(tmp_path, factory):
    rows = [{"_id": f"d{i}", "text": f"document {i} about topic {i % 11} and {i % 5}"} for i in range(300)]
    index_dir = tmp_path / "idx"
    build_index(
        read_corpus(write_rows(tmp_path / "a.jsonl", rows)), index_dir, FakeEncoder(), IndexConfig(factory=factory)
    )
    rows[3]["text"] = "a wholly new text about kites"
    report = reindex(index_dir, write_rows(tmp_path / "b.jsonl", rows), FakeEncoder())
    assert (report.updated, report.unchanged, report.retrained) == (1, 299, False)
    manifest = Manifest.read(layout.current_version_dir(index_dir))
    assert manifest.factory == Manifest.read(sorted(index_dir.glob("v*"))[0]).factory
    searcher = Searcher.open(index_dir, encoder=FakeEncoder())
    hits = searcher.search("wholly new kites", k=10, nprobe=manifest.nlist or None)  # PQ is lossy: top 10, not top 1
    assert "d3" in [hit.doc_id for hit in hits] and len(searcher) == 300


def test_a_wrong_corpus_cannot_delete_most_of_the_index_without_asking(index_dir, tmp_path):
    other = write_rows(tmp_path / "other.jsonl", tiny_rows()[:5] + [{"_id": "x", "text": "something else"}])
    before = (index_dir / layout.CURRENT_NAME).read_text()
    encoder = CountingEncoder()
    with pytest.raises(InvalidInputError, match=r"would delete 21 of the index's 26 documents .*--allow-mass-delete"):
        reindex(index_dir, other, encoder)
    assert encoder.encoded == [] and (index_dir / layout.CURRENT_NAME).read_text() == before
    assert reindex(index_dir, other, FakeEncoder(), allow_mass_delete=True).deleted == 21


def test_a_reindex_that_changes_nothing_publishes_no_version(index_dir):
    before = (index_dir / layout.CURRENT_NAME).read_text()
    report = reindex(index_dir, TINY_CORPUS_DIR, FakeEncoder())
    assert (report.added, report.updated, report.deleted, report.unchanged, report.published) == (0, 0, 0, 26, False)
    assert (index_dir / layout.CURRENT_NAME).read_text() == before and "nothing changed" in report.summary()
    assert reindex(index_dir, TINY_CORPUS_DIR, FakeEncoder(), retrain=True).published  # asked for: a new version
    assert reindex(index_dir, TINY_CORPUS_DIR, FakeEncoder(salt="new")).encoded == 26  # new towers: re-encoded


def test_an_empty_corpus_is_named_and_changes_nothing(index_dir, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(CorpusError, match=f"corpus {empty} has no documents"):
        reindex(index_dir, empty, FakeEncoder(), allow_mass_delete=True)


def test_lone_surrogates_stop_reindex_and_add_before_encoding(index_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"_id": "fine", "text": "ok"}\n{"_id": "b", "text": "x \\ud800"}\n')
    encoder = CountingEncoder()
    with pytest.raises(CorpusError, match=r"bad\.jsonl:2: document b: text .* lone surrogate"):
        reindex(index_dir, bad, encoder)
    with pytest.raises(CorpusError, match=r"bad\.jsonl:2: document b: text .* lone surrogate"):
        add_documents(index_dir, bad, encoder)
    assert add_documents(index_dir, bad, encoder, skip_invalid=True).added == 1
    assert encoder.encoded == ["ok"]


def test_delete_refuses_ids_no_index_can_hold(index_dir):
    with pytest.raises(InvalidInputError, match=r"document id 'bad\\udcffid' is not valid Unicode"):
        delete_documents(index_dir, ["bad\udcffid"], FakeEncoder())


def test_a_query_tower_retrained_alone_is_swapped_in_without_encoding_a_document(index_dir):
    from dualsearch.errors import IndexMismatchError

    before = Manifest.read(layout.current_version_dir(index_dir))
    retrained = CountingEncoder(query_variant="tuned")
    with pytest.raises(IndexMismatchError, match="query tower differs .* document tower is the same.*reindex"):
        Searcher.open(index_dir, encoder=retrained)
    report = reindex(index_dir, TINY_CORPUS_DIR, retrained)
    assert report.published and report.encoded == 0 and not report.retrained and retrained.encoded == []
    after = Manifest.read(layout.current_version_dir(index_dir))
    assert after.document_weights_sha256 == before.document_weights_sha256
    assert after.query_weights_sha256 == retrained.identity().tower_sha256("query") != before.query_weights_sha256
    with Searcher.open(index_dir, encoder=retrained) as searcher:
        assert searcher.search("green tea", k=1)[0].doc_id == "tea-green"
    with pytest.raises(IndexMismatchError, match="query tower differs"):
        Searcher.open(index_dir, encoder=FakeEncoder())  # the old query tower is refused in turn
    assert reindex(index_dir, TINY_CORPUS_DIR, retrained).published is False  # nothing left to change


def test_another_document_tower_is_refused_by_name(index_dir):
    from dualsearch.errors import IndexMismatchError

    with pytest.raises(IndexMismatchError, match="towers differ .*re-index"):
        Searcher.open(index_dir, encoder=FakeEncoder(salt="other"))


def test_a_manifest_without_tower_hashes_still_opens_and_reindexes_whole(index_dir):
    from tests.helpers import edit_manifest, make_legacy

    edit_manifest(index_dir, query_weights_sha256="", document_weights_sha256="")
    make_legacy(index_dir)  # no checksum of the edited manifest to check
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:  # the whole model's hash still matches
        assert searcher.search("green tea", k=1)[0].doc_id == "tea-green"
    retrained = CountingEncoder(query_variant="tuned")
    report = reindex(index_dir, TINY_CORPUS_DIR, retrained)
    assert report.encoded == 26  # which tower changed is unknown: everything is encoded again
    assert Manifest.read(layout.current_version_dir(index_dir)).document_weights_sha256
