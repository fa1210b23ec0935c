"""Indexes written in an older format are converted by one command, without encoding anything again:
the fixture tests/fixtures/format1-tiny was written by the format-1 code (tests/fixtures/README.md)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from dualsearch.cli import main
from dualsearch.errors import IndexMismatchError
from dualsearch.index import layout
from dualsearch.index.manifest import FORMAT_VERSION, Manifest
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.write.reindex import add_documents
from dualsearch.write.upgrade import index_format, upgrade
from tests.helpers import CountingEncoder

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "format1-tiny"
FORMAT2 = Path(__file__).resolve().parent / "fixtures" / "format2-tiny"
TOWERS = dict(dimension=32)  # the fake towers that wrote the fixture


@pytest.fixture
def old_index(tmp_path) -> Path:
    directory = tmp_path / "old"
    shutil.copytree(FIXTURE, directory)
    return directory


def test_an_old_index_is_refused_with_the_command_that_converts_it(old_index):
    with pytest.raises(IndexMismatchError, match=r"index format 1; .*dualsearch upgrade"):
        Searcher.open(old_index, encoder=FakeEncoder(**TOWERS))


def test_upgrade_converts_without_encoding_and_search_finds_the_same_documents(old_index):
    old_version = layout.current_version_dir(old_index)
    old_vectors = np.fromfile(old_version / "vectors.f32", np.float32).reshape(26, 32)
    with sqlite3.connect(old_version / "documents.sqlite") as connection:
        old_ids = dict(connection.execute("SELECT row_id, doc_id FROM documents").fetchall())
    encoder = CountingEncoder(**TOWERS)
    report = upgrade(old_index, encoder)
    assert (report.from_format, report.to_format, report.documents, report.encoded) == (1, FORMAT_VERSION, 26, 0)
    assert encoder.encoded == [] and index_format(old_index) == FORMAT_VERSION
    manifest = Manifest.read(report.version_dir)
    assert manifest.passages["max_passages"] == 1 and manifest.passage_count == 26 and manifest.nlist == 1
    query = "why does mars look red"
    old_scores = old_vectors @ FakeEncoder(**TOWERS).encode_queries([query])[0]  # the old index's exact ranking
    with Searcher.open(old_index, encoder=FakeEncoder(**TOWERS)) as searcher:
        assert np.array_equal(np.asarray(searcher.vectors), old_vectors)  # the stored vectors, row for row
        dense = searcher.search(query, k=26, mode="dense", exact=True)
        expected = {old_ids[row]: float(score) for row, score in enumerate(old_scores)}
        assert {r.doc_id: r.score for r in dense} == pytest.approx(expected, abs=1e-6)  # each document its own vector
        lexical = searcher.search("espresso", k=1, mode="lexical")[0]  # BM25 built from the stored texts
        assert lexical.doc_id == "coffee-espresso" and searcher.search("green tea", k=3)  # hybrid, the default
    assert (old_index / "v000001" / "manifest.json").is_file()  # the old version stays for its readers


def test_an_upgraded_index_takes_writes_like_any_other(old_index):
    upgrade(old_index, FakeEncoder(**TOWERS))
    from dualsearch.corpora.document import Document

    add_documents(old_index, [Document("kites", "Kites", "Kites fly on the wind.")], FakeEncoder(**TOWERS))
    with Searcher.open(old_index, encoder=FakeEncoder(**TOWERS)) as searcher:
        assert searcher.search("kites on the wind", k=1)[0].doc_id == "kites" and len(searcher) == 27


def test_upgrade_refuses_other_towers_and_leaves_the_index_as_it_was(old_index):
    with pytest.raises(IndexMismatchError, match="upgrade with the towers that built the index"):
        upgrade(old_index, FakeEncoder(dimension=32, salt="other"))
    assert index_format(old_index) == 1 and (old_index / "CURRENT").read_text().startswith("v000001")


def test_upgrade_of_a_current_index_changes_nothing(tiny_index, fake_encoder):
    before = (tiny_index / "CURRENT").read_text()
    report = upgrade(tiny_index, fake_encoder)
    assert report.from_format == report.to_format == FORMAT_VERSION and report.encoded == 0
    assert (tiny_index / "CURRENT").read_text() == before


def test_the_upgrade_command(old_index, monkeypatch, capsys):
    loaded = []

    def fake_towers(model, backend):
        loaded.append((model, backend))
        return FakeEncoder(**TOWERS)

    monkeypatch.setattr("dualsearch.towers.backends.load_encoder", fake_towers)
    assert main(["upgrade", str(old_index)]) == 0
    assert "format 1 -> 3: 26 documents, 0 encoded" in capsys.readouterr().out
    assert loaded == [("fake", "torch")]  # the towers the old manifest names, on what encoded them
    assert main(["upgrade", str(old_index)]) == 0
    assert "already format 3: nothing to do" in capsys.readouterr().out and len(loaded) == 1


@pytest.fixture
def format2_index(tmp_path) -> Path:
    directory = tmp_path / "format2"
    shutil.copytree(FORMAT2, directory)
    return directory


def test_a_format2_index_is_refused_with_the_command_that_converts_it(format2_index):
    with pytest.raises(IndexMismatchError, match=r"index format 2; .*dualsearch upgrade"):
        Searcher.open(format2_index, encoder=FakeEncoder(**TOWERS))


def test_upgrade_from_format2_keeps_every_vector_setting_and_ranking(format2_index):
    from dualsearch.index.lexical import LexicalIndex

    old_version = layout.current_version_dir(format2_index)
    old_vectors = np.fromfile(old_version / "vectors.f32", np.float32).reshape(26, 32)
    old_manifest = json.loads((old_version / "manifest.json").read_text())
    with sqlite3.connect(old_version / "documents.sqlite") as connection:
        old_ids = [doc_id for (doc_id,) in connection.execute("SELECT doc_id FROM documents ORDER BY doc_row")]
    bm25s = LexicalIndex.load(old_version)  # what format 2 ranked with
    encoder = CountingEncoder(**TOWERS)
    report = upgrade(format2_index, encoder)
    assert (report.from_format, report.to_format, report.documents, report.encoded) == (2, FORMAT_VERSION, 26, 0)
    assert encoder.encoded == []
    manifest = Manifest.read(report.version_dir)
    assert manifest.search == old_manifest["search"] and manifest.passages == old_manifest["passages"]
    assert (manifest.nlist, manifest.factory, manifest.trained_at) == (
        1,
        old_manifest["factory"],
        old_manifest["trained_at"],
    )
    with Searcher.open(format2_index, encoder=FakeEncoder(**TOWERS)) as searcher:
        assert np.array_equal(np.asarray(searcher.vectors), old_vectors)
        for query in ("why does mars look red", "espresso", "green tea leaves"):
            lexical = {r.doc_id: r.score for r in searcher.search(query, k=26, mode="lexical")}
            expected = {old_ids[row]: float(score) for row, score in enumerate(bm25s.scores(query)) if score > 0}
            assert lexical == pytest.approx(expected, abs=1e-5)  # the same BM25 scores, from the new postings
