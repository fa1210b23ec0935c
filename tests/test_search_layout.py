"""The index directory: CURRENT and the manifest are protected, unwritable places and failed first
builds give one clear error and leave nothing behind."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import socket

import pytest

from dualsearch.corpora.document import Document
from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import (
    CorpusError,
    IndexBuildError,
    IndexCorruptError,
    IndexLockedError,
    IndexNotWritableError,
    InvalidInputError,
)
from dualsearch.index import layout
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import build_index, index_corpus
from dualsearch.write.lock import IndexLock
from dualsearch.write.reindex import add_documents, delete_documents, reindex
from tests.helpers import edit_manifest, make_legacy


def test_random_bytes_in_current_are_corruption(tiny_index, fake_encoder):
    (tiny_index / layout.CURRENT_NAME).write_bytes(os.urandom(16) + b"\xff\xfe")
    with pytest.raises(IndexCorruptError, match="CURRENT is damaged: not text"):
        Searcher.open(tiny_index, encoder=fake_encoder)


def test_an_index_written_before_the_manifest_checksum_still_opens(tiny_index, fake_encoder):
    make_legacy(tiny_index)
    with Searcher.open(tiny_index, encoder=fake_encoder) as searcher:
        assert searcher.search("green tea", k=1)[0].doc_id == "tea-green"
    reindex(tiny_index, "tiny", fake_encoder, retrain=True)  # and a re-index protects it from then on
    assert len((tiny_index / layout.CURRENT_NAME).read_text().split()) == 2


@pytest.mark.parametrize(
    "changes", [{"dimension": 7}, {"default_nprobe": 3}, {"files": {}}, {"document_count": 999}, {"corpus": "x"}]
)
def test_an_edited_manifest_that_is_still_valid_json_is_refused(tiny_index, fake_encoder, changes):
    edit_manifest(tiny_index, **changes)
    with pytest.raises(IndexCorruptError, match="manifest.json does not match the checksum in .*CURRENT"):
        Searcher.open(tiny_index, encoder=fake_encoder)
    with pytest.raises(IndexCorruptError, match="manifest.json does not match"):
        reindex(tiny_index, "tiny", fake_encoder)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"default_nprobe": "abc"}, "field 'default_nprobe' must be int, got str 'abc'"),
        ({"dimension": 7.5}, "field 'dimension' must be int, got float"),
        ({"routes": "query"}, "field 'routes' must be list"),
        ({"files": {"index.faiss": "abc"}}, "field 'files' must be dict"),
    ],
)
def test_manifest_fields_are_type_checked_even_without_a_checksum(tiny_index, fake_encoder, changes, message):
    make_legacy(tiny_index)
    edit_manifest(tiny_index, **changes)
    with pytest.raises(IndexCorruptError, match=message):
        Searcher.open(tiny_index, encoder=fake_encoder)


def test_a_manifest_listing_no_checksums_is_refused_even_without_a_checksum(tiny_index, fake_encoder):
    make_legacy(tiny_index)
    (segment,) = _manifest_of(tiny_index)["segments"]
    edit_manifest(tiny_index, segments=[{**segment, "files": {}}])
    with pytest.raises(IndexCorruptError, match="segment s000001 lists no checksum for index.faiss"):
        Searcher.open(tiny_index, encoder=fake_encoder)


def test_an_index_under_a_file_is_one_clear_error_naming_the_path(tmp_path, fake_encoder):
    (tmp_path / "a-file").write_text("not a directory")
    target = tmp_path / "a-file" / "idx"
    with pytest.raises(IndexNotWritableError, match=f"cannot write to {target}"):
        build_index(read_corpus("tiny"), target, fake_encoder)


def _refuse_writes(monkeypatch):
    """Behave like a read-only directory for a process that is not root (root ignores the mode bits)."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("dualsearch.write.lock.open", refuse, raising=False)
    monkeypatch.setattr("dualsearch.index.layout.tempfile.mkdtemp", refuse)


@pytest.mark.parametrize("operation", ["reindex", "add", "delete", "index"])
def test_every_write_to_a_read_only_index_is_one_error_naming_the_path(tiny_index, tmp_path, monkeypatch, operation):
    before = sorted(p.name for p in tiny_index.iterdir())
    extra = tmp_path / "extra.jsonl"
    extra.write_text('{"_id": "new", "text": "a new document"}\n')
    run = {
        "reindex": lambda: reindex(tiny_index, "tiny", FakeEncoder(), retrain=True),
        "add": lambda: add_documents(tiny_index, extra, FakeEncoder()),
        "delete": lambda: delete_documents(tiny_index, ["tea-green"], FakeEncoder()),
        "index": lambda: build_index(read_corpus("tiny"), tiny_index, FakeEncoder()),
    }[operation]
    _refuse_writes(monkeypatch)
    with pytest.raises(IndexNotWritableError, match=f"cannot write to {tiny_index}.*Permission denied") as caught:
        run()
    assert isinstance(caught.value, PermissionError)
    assert sorted(p.name for p in tiny_index.iterdir()) == before


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root writes into read-only directories; the monkeypatched test covers it"
)
def test_a_really_read_only_index_directory(tiny_index, fake_encoder):
    (tiny_index / ".lock").unlink(missing_ok=True)
    tiny_index.chmod(0o555)
    try:
        with pytest.raises(IndexNotWritableError, match=f"cannot write to {tiny_index}"):
            reindex(tiny_index, "tiny", fake_encoder, retrain=True)
    finally:
        tiny_index.chmod(0o755)


def test_a_failed_first_build_leaves_no_directory(tmp_path, fake_encoder):
    with pytest.raises(IndexBuildError, match="has no documents"):
        build_index(iter([]), tmp_path / "out", fake_encoder)
    assert not (tmp_path / "out").exists()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(IndexBuildError, match=f"corpus {empty} has no documents"):
        index_corpus(empty, tmp_path / "out", fake_encoder)
    assert not (tmp_path / "out").exists()

    def failing():
        yield Document("a", "", "fine")
        raise CorpusError("x.jsonl:2: bad")

    with pytest.raises(CorpusError):
        build_index(failing(), tmp_path / "out2", fake_encoder)
    assert not (tmp_path / "out2").exists()


def test_a_failed_rebuild_keeps_the_existing_index(tiny_index, tmp_path, fake_encoder):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(IndexBuildError):
        index_corpus(empty, tiny_index, fake_encoder)
    assert Searcher.open(tiny_index, encoder=fake_encoder).search("tea", k=1)


def test_an_index_path_that_is_not_utf8_is_refused_before_any_work(tmp_path, fake_encoder):
    target = tmp_path / os.fsdecode(b"idx-\xff")
    with pytest.raises(InvalidInputError, match=r"the index path .*idx-\\xff' is not valid UTF-8"):
        build_index(read_corpus("tiny"), target, fake_encoder)
    assert not target.exists()


DAMAGED_LOCK_RECORDS = {
    "a list": b"[1]",
    "random bytes": bytes(range(200, 250)),
    "a pid that is no number": json.dumps({"pid": "abc", "host": socket.gethostname()}).encode(),
    "a pid past any int": json.dumps({"pid": 10**30, "host": socket.gethostname()}).encode(),
}


@pytest.mark.parametrize("record", list(DAMAGED_LOCK_RECORDS.values()), ids=list(DAMAGED_LOCK_RECORDS))
def test_l13_a_damaged_lock_record_is_stale_and_overwritten(tiny_index, fake_encoder, record, caplog):
    (tiny_index / ".lock").write_bytes(record)
    with caplog.at_level(logging.WARNING):
        report = delete_documents(tiny_index, ["tea-green"], fake_encoder)  # takes the lock
    assert report.deleted == 1
    assert "unreadable" in caplog.text and str(tiny_index / ".lock") in caplog.text


@pytest.mark.parametrize("record", list(DAMAGED_LOCK_RECORDS.values()), ids=list(DAMAGED_LOCK_RECORDS))
def test_l13_a_busy_lock_with_a_damaged_record_still_names_the_lock(tiny_index, record):
    path = tiny_index / ".lock"
    with open(path, "a+b") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a writer that has not written its record yet
        path.write_bytes(record)
        with pytest.raises(IndexLockedError, match="is being written by another process"):
            with IndexLock(tiny_index):
                pass


def edit_manifest_and_its_checksum(index_dir, **changes):
    """A hand edit of the manifest whose editor also recomputed its checksum in CURRENT."""
    edit_manifest(index_dir, **changes)
    pointer = index_dir / layout.CURRENT_NAME
    name = pointer.read_text().split()[0]
    sha256 = layout.file_checksum(index_dir / name / "manifest.json")["sha256"]
    pointer.write_text(f"{name} {sha256}\n")


def _manifest_of(index_dir) -> dict:
    return json.loads((layout.current_version_dir(index_dir) / "manifest.json").read_text())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (lambda m: {"dimension": 7}, "dimension 7"),
        (lambda m: {"document_count": 999}, "document_count 999"),
        (lambda m: {"document_count": 25, "segments": [{**m["segments"][0], "documents": 25}]}, "holds 26 documents"),
        (lambda m: {"search": {**m["search"], "mode": "fuzzy"}}, "unknown search mode 'fuzzy'"),
        (lambda m: {"default_nprobe": -3}, "default_nprobe -3"),
        (lambda m: {"nlist": 10**9}, "nlist 1000000000"),
        (lambda m: {"search": {**m["search"], "candidates": 10**12}}, "candidates"),
        (lambda m: {"factory": "HNSW32"}, "factory 'HNSW32'"),
        (lambda m: {"metric": "l2"}, "metric 'l2'"),
        (lambda m: {"on_disk": True}, "on_disk"),
        (lambda m: {"passages": {**m["passages"], "window": 0}}, "passages.window 0"),
        (lambda m: {"lexical": {**m["lexical"], "k1": "x"}}, "lexical.k1 'x'"),
    ],
    ids=[
        "dimension",
        "document_count",
        "document_count below the store's",
        "mode",
        "nprobe",
        "nlist",
        "candidates",
        "factory",
        "metric",
        "on_disk",
        "window",
        "k1",
    ],
)
def test_l15_manifest_values_are_checked_against_each_other_and_the_files(tiny_index, fake_encoder, changes, message):
    edit_manifest_and_its_checksum(tiny_index, **changes(_manifest_of(tiny_index)))
    named = rf"manifest\.json.*{re.escape(message)}|{re.escape(message)}.*manifest\.json"
    with pytest.raises(IndexCorruptError, match=named):
        with Searcher.open(tiny_index, encoder=fake_encoder) as searcher:
            searcher.search("green tea", k=1)
    with pytest.raises(IndexCorruptError, match=named):
        reindex(tiny_index, "tiny", fake_encoder)


def test_l15_a_query_tower_hash_matching_no_saved_tower_is_not_called_an_old_index(tiny_index, caplog):
    from dualsearch.index.manifest import Manifest
    from dualsearch.index.query_tower import open_light_encoder

    saved = tiny_index / "towers" / f"query-onnx-{'a' * 32}"
    saved.mkdir(parents=True)
    (saved / "tower.json").write_text("{}")
    edit_manifest_and_its_checksum(tiny_index, query_weights_sha256="0" * 64)
    manifest = Manifest.read(layout.current_version_dir(tiny_index))
    with caplog.at_level(logging.WARNING):
        assert open_light_encoder(tiny_index, manifest) is None
    assert "built before" not in caplog.text
    assert "none is the query tower its manifest names" in caplog.text and "000000000000" in caplog.text
