"""L3: every file of the query tower an index saves under ``DIR/towers/`` is covered by the version's
checksums, so a damaged or edited ``tokenizer.json`` or ``tower.json`` is named, never a traceback or
silently other results; an index written before the checksums were recorded still opens.

The towers are fakes that export a tower directory of the real shape (a tokenizer, ``tower.json``,
a graph file), without torch or a real graph: these tests stop before a graph would run.
"""

from __future__ import annotations

import json
import logging

import pytest

from dualsearch.atomic import staged_directory
from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import IndexCorruptError
from dualsearch.index import layout
from dualsearch.index.manifest import Manifest
from dualsearch.index.query_tower import TOWERS_DIR, open_light_encoder
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.towers.exported import GRAPH_FILE, TOKENIZER_FILE, TOWER_FILE, TowerConfig, graph_sha256
from dualsearch.write.build import build_index
from dualsearch.write.reindex import reindex
from tests.helpers import edit_manifest, make_legacy


class ExportingFakeEncoder(FakeEncoder):
    """The fake towers, able to save a query tower directory as an index build does."""

    def export_query_tower(self, out_dir) -> None:
        from tokenizers import Tokenizer, models, pre_tokenizers

        with staged_directory(out_dir) as staged:
            (staged / GRAPH_FILE).write_bytes(b"a stand-in for an ONNX graph")
            tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "green": 1, "tea": 2}, unk_token="[UNK]"))
            tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
            tokenizer.save(str(staged / TOKENIZER_FILE))
            config = TowerConfig(
                backend="onnx",
                source_weights_sha256=self.identity().tower_sha256("query"),
                graph_sha256=graph_sha256(staged, "onnx"),
                dimension=self.dimension,
                max_seq_length=16,
                pooling="mean",
                inputs=["input_ids", "attention_mask"],
                pad_token_id=0,
            )
            config.write(staged)


@pytest.fixture
def towered_index(tmp_path):
    index_dir = tmp_path / "index"
    build_index(read_corpus("tiny"), index_dir, ExportingFakeEncoder(), corpus_name="tiny")
    return index_dir


def _tower_dir(index_dir):
    [tower] = (index_dir / TOWERS_DIR).iterdir()
    return tower


def _manifest(index_dir) -> Manifest:
    return Manifest.read(layout.current_version_dir(index_dir))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:50])


def _remap_tea(path):
    data = json.loads(path.read_text())
    data["model"]["vocab"]["tea"] = 1  # a vocabulary id remapped: still a valid tokenizer
    path.write_text(json.dumps(data))


def _dimension_7(path):
    path.write_text(json.dumps({**json.loads(path.read_text()), "dimension": 7}))


DAMAGES = {
    "tokenizer truncated": (TOKENIZER_FILE, _truncate),
    "tokenizer remapped": (TOKENIZER_FILE, _remap_tea),
    "tower.json dimension 7": (TOWER_FILE, _dimension_7),
}


def test_l3_the_manifest_records_every_file_of_the_saved_query_tower(towered_index):
    tower = _tower_dir(towered_index)
    recorded = _manifest(towered_index).query_tower_files
    on_disk = sorted(path.relative_to(towered_index).as_posix() for path in tower.rglob("*") if path.is_file())
    assert sorted(recorded) == on_disk and len(on_disk) == 3
    layout.verify_listed_files(towered_index, recorded)


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_l3_a_damaged_tower_file_is_named_and_the_index_searches_through_pytorch(towered_index, caplog, damage):
    name, spoil = DAMAGES[damage]
    spoil(_tower_dir(towered_index) / name)
    with caplog.at_level(logging.WARNING):
        assert open_light_encoder(towered_index, _manifest(towered_index)) is None
    assert f"{name} " in caplog.text and "searching through PyTorch" in caplog.text
    assert "checksum" in caplog.text or "bytes" in caplog.text


def test_l3_the_next_version_saves_a_damaged_tower_again(towered_index):
    _remap_tea(_tower_dir(towered_index) / TOKENIZER_FILE)
    reindex(towered_index, "tiny", ExportingFakeEncoder(), retrain=True)
    layout.verify_listed_files(towered_index, _manifest(towered_index).query_tower_files)
    assert json.loads((_tower_dir(towered_index) / TOKENIZER_FILE).read_text())["model"]["vocab"]["tea"] == 2


def test_l3_an_index_written_before_tower_checksums_still_opens(towered_index, caplog):
    make_legacy(towered_index)  # a CURRENT without the manifest's checksum, so the manifest can lose the field
    path = layout.current_version_dir(towered_index) / "manifest.json"
    data = json.loads(path.read_text())
    del data["query_tower_files"]
    path.write_text(json.dumps(data))
    with Searcher.open(towered_index, encoder=FakeEncoder()) as searcher:
        assert searcher.search("green tea", k=1)[0].doc_id == "tea-green"
    _truncate(_tower_dir(towered_index) / TOKENIZER_FILE)  # unchecked now, yet one clear warning, no traceback
    with caplog.at_level(logging.WARNING):
        assert open_light_encoder(towered_index, _manifest(towered_index)) is None
    assert f"{TOKENIZER_FILE} cannot be read" in caplog.text


def test_l3_an_edited_query_tower_record_in_the_manifest_is_caught_by_current(towered_index):
    recorded = _manifest(towered_index).query_tower_files
    edit_manifest(towered_index, query_tower_files={name: {**value, "bytes": 1} for name, value in recorded.items()})
    with pytest.raises(IndexCorruptError, match="does not match the checksum"):
        Searcher.open(towered_index, encoder=FakeEncoder())
