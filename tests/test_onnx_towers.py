"""Towers on ONNX Runtime: equal to PyTorch's, checked on open, and the light query path of an index."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dualsearch.cli import main
from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import ModelError
from dualsearch.read.searcher import Searcher
from dualsearch.towers.backends import load_encoder
from dualsearch.towers.export import MIN_COSINE, export_towers
from dualsearch.towers.exported import CALIBRATED_BACKENDS, GRAPH_FILE, TOWER_FILE, OnnxEncoder
from dualsearch.write.build import build_index
from tests.helpers import edit_manifest, make_legacy

pytestmark = pytest.mark.slow  # trains, exports or starts Ray: seconds a test (make test-fast skips it)

TEXTS = [
    "green tea and catechins",
    "How do I parse command line arguments?",
    "a longer text " * 80,  # past the tiny towers' 64-token window: truncation must agree
    "Ünïcödé 中文 🙂",
]
HEAVY = ("torch", "transformers", "sentence_transformers", "gradio")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def tiny_texts() -> list[str]:
    return [document.encoding_text() for document in read_corpus("tiny")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_encoder):
    root = tmp_path_factory.mktemp("exported")
    return {
        backend: export_towers(
            tiny_encoder, root / backend, backend, tiny_texts() if backend in CALIBRATED_BACKENDS else ()
        )
        and root / backend
        for backend in MIN_COSINE
    }


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8", "openvino-int8"])
def test_both_towers_of_a_router_match_pytorch_after_a_reload(exported, tiny_encoder, backend):
    onnx = OnnxEncoder.load(exported[backend])
    bound = 1e-4 if backend == "onnx" else 1 - MIN_COSINE[backend]
    for side in ("query", "document"):
        encode = "encode_queries" if side == "query" else "encode_documents"
        expected, actual = getattr(tiny_encoder, encode)(TEXTS), getattr(onnx, encode)(TEXTS)
        assert np.all(1 - cosines(expected, actual) <= bound), side
    assert not np.allclose(onnx.encode_queries(TEXTS[:1]), onnx.encode_documents(TEXTS[:1]))  # two towers
    identity, built = onnx.identity(), tiny_encoder.identity()
    assert identity.tower_sha256("query") == built.tower_sha256("query")
    assert identity.tower_sha256("document") == built.tower_sha256("document")
    assert (identity.query_backend, identity.document_backend) == (backend, backend)


def test_the_exported_document_tower_cuts_passages_as_pytorch_does(exported, tiny_encoder):
    onnx = OnnxEncoder.load(exported["onnx"])
    assert onnx.document_window == tiny_encoder.document_window
    assert onnx.document_token_spans(TEXTS) == tiny_encoder.document_token_spans(TEXTS)
    [expected], [actual] = tiny_encoder.token_vectors(TEXTS[:1], "query"), onnx.token_vectors(TEXTS[:1], "query")
    assert actual.tokens == expected.tokens and actual.spans == expected.spans
    np.testing.assert_allclose(actual.vectors, expected.vectors, atol=1e-4)


def test_an_export_under_bfloat16_autocast_is_still_a_float32_graph(tmp_path, tiny_encoder):
    """Fine-tuning encodes under bf16 autocast on CPUs with native bf16, and saves its towers' export
    from there: a traced bf16 graph would not run on ONNX Runtime's CPU provider."""
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16):
        export_towers(tiny_encoder, tmp_path / "towers", "onnx")
    onnx = OnnxEncoder.load(tmp_path / "towers")
    assert np.all(1 - cosines(tiny_encoder.encode_documents(TEXTS), onnx.encode_documents(TEXTS)) <= 1e-4)


def test_a_model_without_routes_exports_one_tower_for_both_sides(tmp_path, tiny_plain_model_dir):
    from dualsearch.towers.dual_encoder import DualEncoder

    plain = DualEncoder.load(str(tiny_plain_model_dir))
    manifest = export_towers(plain, tmp_path / "towers")
    assert manifest.sides == {"query": "tower", "document": "tower"} and manifest.routes == []
    onnx = OnnxEncoder.load(tmp_path / "towers")
    assert np.all(1 - cosines(plain.encode_documents(TEXTS), onnx.encode_documents(TEXTS)) <= 1e-4)


def damaged_copy(towers: Path, file: Path, copy: Path) -> Path:
    """A copy of a towers directory with one byte of ``file`` (relative to it) flipped."""
    import shutil

    shutil.copytree(towers, copy)
    data = bytearray((copy / file).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / file).write_bytes(bytes(data))
    return copy


def test_a_damaged_graph_is_refused(exported, tmp_path):
    copy = damaged_copy(exported["onnx"], Path("query") / GRAPH_FILE, tmp_path / "towers")
    with pytest.raises(ModelError, match="does not match the sha256"):
        OnnxEncoder.load(copy)


def test_an_export_runs_only_on_its_own_backend(exported):
    assert isinstance(load_encoder(str(exported["onnx-int8"])), OnnxEncoder)
    with pytest.raises(ModelError, match="exported for onnx-int8"):
        load_encoder(str(exported["onnx-int8"]), "onnx")
    with pytest.raises(ModelError, match="unknown backend"):
        load_encoder(str(exported["onnx"]), "tensorrt")


def test_an_openvino_export_is_two_files_hashed_together_and_refused_when_damaged(exported, tmp_path):
    from dualsearch.towers.exported import OPENVINO_GRAPH, OPENVINO_WEIGHTS, graph_sha256

    tower = exported["openvino"] / "document"
    assert {path.name for path in tower.iterdir()} >= {OPENVINO_GRAPH, OPENVINO_WEIGHTS}
    assert json.loads((tower / TOWER_FILE).read_text())["graph_sha256"] == graph_sha256(tower, "openvino")
    copy = damaged_copy(exported["openvino"], Path("document") / OPENVINO_WEIGHTS, tmp_path / "towers")
    with pytest.raises(ModelError, match="does not match the sha256"):
        OnnxEncoder.load(copy)


def test_an_openvino_int8_export_is_quantised_and_records_what_it_was_calibrated_on(exported):
    from dualsearch.towers.export import calibration_sample, texts_sha256

    documents = OnnxEncoder.load(exported["openvino-int8"]).document_tower
    assert documents.config.calibration_texts == len(calibration_sample(tiny_texts())) == 26
    assert documents.config.calibration_sha256 == texts_sha256(calibration_sample(tiny_texts()))
    graph = (documents.directory / "model.xml").read_text()
    assert "FakeQuantize" in graph  # activations quantised, not only weights
    assert "FakeQuantize" not in (exported["openvino"] / "document" / "model.xml").read_text()


def test_an_index_built_by_calibrated_towers_comes_back_to_them_for_new_documents(tmp_path, exported):
    from dualsearch.index.layout import current_version_dir
    from dualsearch.index.manifest import Manifest
    from dualsearch.index.query_tower import index_encoder

    index_dir = tmp_path / "index"
    towers = OnnxEncoder.load(exported["openvino-int8"])
    build_index(read_corpus("tiny"), index_dir, towers, corpus_name="tiny")
    manifest = Manifest.read(current_version_dir(index_dir))
    assert manifest.model == str(exported["openvino-int8"].resolve())  # the export, not the PyTorch model
    assert (manifest.query_backend, manifest.document_backend) == ("openvino-int8", "openvino-int8")
    reopened = index_encoder(index_dir, manifest)  # as `reindex` and `add` get their towers
    assert reopened.identity().query_backend == "openvino-int8"
    np.testing.assert_allclose(reopened.encode_documents(TEXTS), towers.encode_documents(TEXTS), atol=1e-6)


def test_one_tower_serving_both_sides_calibrates_on_whole_documents(tmp_path, tiny_plain_model_dir):
    """Its documents are long: calibrated on the short query openings, long inputs would clip."""
    from dualsearch.towers.dual_encoder import DualEncoder
    from dualsearch.towers.export import calibration_sample, texts_sha256

    export_towers(DualEncoder.load(str(tiny_plain_model_dir)), tmp_path / "towers", "openvino-int8", tiny_texts())
    tower = OnnxEncoder.load(tmp_path / "towers").document_tower
    assert tower.config.calibration_sha256 == texts_sha256(calibration_sample(tiny_texts()))


def test_a_calibrated_backend_needs_texts_and_is_never_exported_behind_the_user_s_back(tmp_path, tiny_encoder):
    with pytest.raises(ModelError, match="calibrated on your own documents"):
        export_towers(tiny_encoder, tmp_path / "towers", "openvino-int8")
    with pytest.raises(ModelError, match=r"dualsearch export .* --backend openvino-int8 --calibration CORPUS"):
        load_encoder(str(tiny_encoder.model_name), "openvino-int8")


def test_the_export_command_asks_for_calibration_only_where_it_is_used(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "towers"
    assert main(["export", str(tiny_model_dir), "--out", str(out), "--backend", "openvino-int8"]) != 0
    assert "add --calibration CORPUS" in capsys.readouterr().err
    assert main(["export", str(tiny_model_dir), "--out", str(out), "--calibration", "tiny"]) != 0
    assert "needs none" in capsys.readouterr().err
    assert not out.exists()
    command = ["export", str(tiny_model_dir), "--out", str(out), "--backend", "openvino-int8", "--calibration", "tiny"]
    assert main(command) == 0
    assert OnnxEncoder.load(out).identity().document_backend == "openvino-int8"


def test_the_openvino_backend_without_openvino_names_the_extra(monkeypatch):
    from dualsearch.errors import MissingDependencyError
    from dualsearch.towers.exported import openvino_module

    monkeypatch.setitem(sys.modules, "openvino", None)  # what an install without the extra sees
    with pytest.raises(MissingDependencyError, match=r"dualsearch\[openvino\]"):
        openvino_module()


@pytest.fixture(scope="module")
def torch_built_index(tmp_path_factory, tiny_encoder):
    index_dir = tmp_path_factory.mktemp("light") / "index"
    build_index(read_corpus("tiny"), index_dir, tiny_encoder, corpus_name="tiny")
    return index_dir


def test_an_index_searches_through_its_own_onnx_query_tower_as_pytorch_would(torch_built_index, tiny_encoder):
    [tower] = (torch_built_index / "towers").iterdir()
    config = json.loads((tower / TOWER_FILE).read_text())
    assert config["backend"] == "onnx" and config["source_weights_sha256"] == tiny_encoder.identity().tower_sha256(
        "query"
    )
    with Searcher.open(torch_built_index) as light, Searcher.open(torch_built_index, encoder=tiny_encoder) as full:
        assert isinstance(light.encoder, OnnxEncoder)
        for query in ("green tea", "how do plants make energy", "python lists"):
            ours, theirs = light.search(query, k=5, mode="dense"), full.search(query, k=5, mode="dense")
            assert [r.doc_id for r in ours] == [r.doc_id for r in theirs]
            np.testing.assert_allclose([r.score for r in ours], [r.score for r in theirs], atol=1e-4)


def test_a_query_tower_not_the_index_s_falls_back_to_pytorch(torch_built_index, tmp_path, caplog):
    import shutil

    index_dir = tmp_path / "index"
    shutil.copytree(torch_built_index, index_dir)
    [tower] = (index_dir / "towers").iterdir()
    config = json.loads((tower / TOWER_FILE).read_text())
    (tower / TOWER_FILE).write_text(json.dumps({**config, "source_weights_sha256": "0" * 64}))
    with caplog.at_level(logging.WARNING), Searcher.open(index_dir) as searcher:
        assert not isinstance(searcher.encoder, OnnxEncoder)
    # the manifest records the tower's files: the edit is caught by their size or their checksum
    assert re.search(r"tower\.json (does not match its checksum|has \d+ bytes, the manifest says)", caplog.text)
    make_legacy(index_dir)  # as an index written before those checksums: the tower's own record decides
    edit_manifest(index_dir, query_tower_files={})
    caplog.clear()
    with caplog.at_level(logging.WARNING), Searcher.open(index_dir) as searcher:
        assert not isinstance(searcher.encoder, OnnxEncoder)
    assert "is not the index's" in caplog.text


def test_without_onnxruntime_searches_go_through_pytorch_saying_why(torch_built_index, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with caplog.at_level(logging.WARNING), Searcher.open(torch_built_index) as searcher:
        assert not isinstance(searcher.encoder, OnnxEncoder)
        assert searcher.search("green tea", k=1)
    assert "need onnxruntime" in caplog.text and "searching through PyTorch" in caplog.text


def test_an_index_without_a_light_tower_opens_through_pytorch_and_reindex_adds_one(torch_built_index, tmp_path, caplog):
    import shutil

    from dualsearch.write.reindex import reindex

    index_dir = tmp_path / "index"
    shutil.copytree(torch_built_index, index_dir)
    shutil.rmtree(index_dir / "towers")  # as an index built before this change
    with caplog.at_level(logging.WARNING), Searcher.open(index_dir) as searcher:
        encoder = searcher.encoder
        assert searcher.search("green tea", k=1)[0].doc_id == "tea-green"
    assert "has no ONNX query tower" in caplog.text and "dualsearch reindex" in caplog.text
    report = reindex(index_dir, "tiny", encoder)
    assert not report.published  # nothing changed in the corpus, yet the light tower is added
    with Searcher.open(index_dir) as searcher:
        assert isinstance(searcher.encoder, OnnxEncoder)


def test_the_manifest_records_the_backend_that_encoded_the_documents(tmp_path, exported, tiny_encoder):
    from dualsearch.index.layout import current_version_dir
    from dualsearch.index.manifest import Manifest
    from dualsearch.write.reindex import reindex

    index_dir = tmp_path / "index"
    build_index(read_corpus("tiny"), index_dir, OnnxEncoder.load(exported["onnx-int8"]), corpus_name="tiny")
    manifest = Manifest.read(current_version_dir(index_dir))
    assert (manifest.query_backend, manifest.document_backend) == ("onnx-int8", "onnx-int8")
    assert [path.name.split("-")[1] for path in (index_dir / "towers").iterdir()] == ["onnx"]  # "onnx-int8..."
    # the same weights on another backend encode differently: a re-index re-encodes every document
    report = reindex(index_dir, "tiny", tiny_encoder)
    assert report.published and report.encoded == report.unchanged == 26
    assert Manifest.read(current_version_dir(index_dir)).document_backend == "torch"


def test_an_index_built_on_openvino_searches_through_its_openvino_query_tower(tmp_path, exported, tiny_encoder):
    from dualsearch.index.layout import current_version_dir
    from dualsearch.index.manifest import Manifest

    index_dir = tmp_path / "index"
    openvino = OnnxEncoder.load(exported["openvino"])
    build_index(read_corpus("tiny"), index_dir, openvino, corpus_name="tiny")
    manifest = Manifest.read(current_version_dir(index_dir))
    assert (manifest.query_backend, manifest.document_backend) == ("openvino", "openvino")
    with Searcher.open(index_dir) as searcher:
        assert searcher.encoder.identity().query_backend == "openvino"
        query = "green tea and catechins"
        hits = searcher.search(query, k=5, mode="dense")
    with Searcher.open(index_dir, encoder=tiny_encoder) as searcher:  # PyTorch queries against bf16 documents
        expected = searcher.search(query, k=5, mode="dense")
    scores, reference = {hit.doc_id: hit.score for hit in hits}, {hit.doc_id: hit.score for hit in expected}
    common = scores.keys() & reference.keys()
    assert len(hits) == 5 and len(common) >= 3
    assert all(abs(scores[doc] - reference[doc]) < 1 - MIN_COSINE["openvino"] for doc in common)


def run_isolated(code: str, cwd: Path) -> list[str]:
    """Run ``code`` in a fresh interpreter; returns the heavy modules it imported."""
    probe = f"; import sys; print([m for m in {HEAVY!r} if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", code + probe], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    return eval(result.stdout.strip().splitlines()[-1])  # a list literal we printed


def test_import_help_argument_errors_and_a_light_search_load_no_torch(torch_built_index, tmp_path):
    assert run_isolated("import dualsearch", tmp_path) == []
    help_code = "from dualsearch.cli import main\ntry:\n    main(['{}'])\nexcept SystemExit:\n    pass"
    assert run_isolated(help_code.format("--help"), tmp_path) == []
    assert run_isolated(help_code.format("search"), tmp_path) == []  # arguments missing: an argparse error
    search = f"from dualsearch.cli import main; assert main(['search', {str(torch_built_index)!r}, 'green tea']) == 0"
    assert run_isolated(search, tmp_path) == []


def test_export_command_makes_towers_that_index_takes(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setenv("DUALSEARCH_HOME", str(tmp_path / "home"))
    out = tmp_path / "towers"
    assert main(["export", str(tiny_model_dir), "--out", str(out), "--backend", "onnx-int8"]) == 0
    assert "lowest cosine to PyTorch" in capsys.readouterr().out
    assert main(["index", "tiny", "--out", str(tmp_path / "index"), "--model", str(out)]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "index"), "green tea", "-k", "1", "--json", "--mode", "dense"]) == 0
    [result] = json.loads(capsys.readouterr().out)["results"]
    assert result["id"] in {document.id for document in read_corpus("tiny")}
    from dualsearch.index.layout import current_version_dir
    from dualsearch.index.manifest import Manifest

    assert Manifest.read(current_version_dir(tmp_path / "index")).document_backend == "onnx-int8"
    assert not (tmp_path / "home").exists()  # exported towers are used as they are: nothing exported again


def test_towers_exported_for_another_backend_beside_a_model_are_not_served_as_this_one():
    """`dualsearch finetune` before 0.5.0 wrote fp32 towers into its dualsearch-onnx-int8 directory."""
    from dualsearch.towers.backends import _exported
    from dualsearch.towers.exported import TowersManifest

    manifest = TowersManifest("m", "abc", 8, ["document", "query"], "onnx", {"query": "query", "document": "document"})
    assert _exported(manifest, "abc", "onnx") and not _exported(manifest, "abc", "onnx-int8")
    assert not _exported(manifest, "other", "onnx")
