"""``dualsearch reindex | add | delete`` in-process, with the fake towers standing in for the model."""

from __future__ import annotations

import json

import pytest

from dualsearch.cli import main
from dualsearch.corpora.sources import TINY_CORPUS_DIR
from dualsearch.index import layout
from dualsearch.testing import FakeEncoder
from dualsearch.towers.dual_encoder import DualEncoder


@pytest.fixture
def fake_towers(monkeypatch):
    """The CLI loads towers by the manifest's model name; answer with the fake ones, counting loads."""
    loads = []
    monkeypatch.setattr(
        DualEncoder, "load", classmethod(lambda cls, *args, **kwargs: loads.append(args) or FakeEncoder())
    )
    return loads


def test_reindex_refuses_a_mass_delete_unless_allowed(tiny_index, tmp_path, capsys, fake_towers):
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"_id": "x", "text": "another collection"}) + "\n")
    assert main(["reindex", str(tiny_index), "--corpus", str(other)]) == 1
    assert "would delete 26 of the index's 26 documents" in capsys.readouterr().err
    assert fake_towers == []  # refused before the towers were loaded
    assert main(["reindex", str(tiny_index), "--corpus", str(other), "--allow-mass-delete"]) == 0
    assert "added 1, updated 0, deleted 26" in capsys.readouterr().out


def test_reindex_with_an_unchanged_corpus_says_so_and_keeps_the_version(tiny_index, capsys, fake_towers):
    before = (tiny_index / layout.CURRENT_NAME).read_text()
    assert main(["reindex", str(tiny_index), "--corpus", str(TINY_CORPUS_DIR)]) == 0
    assert "nothing changed, v000001 stays live" in capsys.readouterr().out
    assert (tiny_index / layout.CURRENT_NAME).read_text() == before


def test_errors_quoting_a_newline_stay_on_one_line(tiny_index, tmp_path, capsys, fake_towers):
    corpus = tmp_path / "two\nlines\x1b[2J.jsonl"  # a file name may hold anything but / and NUL
    assert main(["reindex", str(tiny_index), "--corpus", str(corpus)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "two\\nlines\\x1b[2J.jsonl" in err


def test_optimize_merges_the_segments_into_one(tiny_index, tmp_path, capsys, fake_towers):
    from dualsearch.index.layout import current_version_dir
    from dualsearch.index.manifest import Manifest

    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"_id": "kites", "text": "kites fly on the wind"}) + "\n")
    assert main(["add", str(tiny_index), str(extra)]) == 0
    assert main(["delete", str(tiny_index), "tea-green"]) == 0
    assert len(Manifest.read(current_version_dir(tiny_index)).segments) == 2
    capsys.readouterr()
    assert main(["optimize", str(tiny_index)]) == 0
    assert "unchanged 26 (encoded 0" in capsys.readouterr().out
    (only,) = Manifest.read(current_version_dir(tiny_index)).segment_entries()
    assert (only.documents, only.deleted_count) == (26, 0)
