"""End to end with the real all-MiniLM-L6-v2 towers (slow: seconds to a few minutes each)."""

from __future__ import annotations

import json
import shutil
from itertools import islice

import pytest

from dualsearch.cli import main
from dualsearch.corpora.sources import TINY_CORPUS_DIR, read_corpus
from dualsearch.index.layout import current_version_dir
from dualsearch.index.manifest import Manifest
from dualsearch.profiles.stdlib import TOWERS_FILE
from dualsearch.towers.weights import STDLIB_DOCUMENT_DELTA_SHA256, stdlib_towers_id

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm():
    from dualsearch.towers.dual_encoder import DualEncoder

    return DualEncoder.load()


def test_default_towers_answer_the_tiny_collection(tmp_path, capsys):
    index_dir = tmp_path / "idx"
    assert main(["index", "tiny", "--out", str(index_dir)]) == 0
    assert "indexed 26 documents" in capsys.readouterr().out
    assert main(["search", str(index_dir), "why does mars look red", "-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["id"] == "astro-mars"
    assert main(["evaluate", str(index_dir), "--queries", str(TINY_CORPUS_DIR), "--exact", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["ndcg@10"] > 0.85 and metrics["mrr@10"] > 0.85


@pytest.mark.data
def test_ivf_matches_exact_search_on_real_scifact_documents(tmp_path, minilm):
    from dualsearch.index.ann import overlap_at_k
    from dualsearch.index.config import IndexConfig
    from dualsearch.read.searcher import Searcher
    from dualsearch.write.build import build_index
    from tests.helpers import beir_data

    scifact = beir_data("scifact")
    # one passage a document: this tests the IVF index against exact search (passages have their own tests)
    report = build_index(islice(read_corpus(scifact), 1500), tmp_path / "idx", minilm, IndexConfig(max_passages=1))
    assert report.nlist == 38 and report.default_nprobe >= 1
    searcher = Searcher.open(tmp_path / "idx", encoder=minilm)
    from dualsearch.corpora.beir import read_queries

    queries = list(read_queries(scifact).values())[:100]
    vectors = minilm.encode_queries(queries)
    _, approximate = searcher.search_vectors(vectors, 10)
    _, exact = searcher.search_vectors(vectors, 10, exact=True)
    assert overlap_at_k(approximate, exact, 10) >= 0.95
    _, one_list = searcher.search_vectors(vectors, 10, nprobe=1)
    assert overlap_at_k(one_list, exact, 10) < overlap_at_k(approximate, exact, 10)


def test_default_corpus_index_is_built_once_and_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DUALSEARCH_HOME", str(tmp_path))
    assert main(["search", "default", "serialize an object to a JSON formatted string", "-k", "5", "--json"]) == 0
    hits = [r["id"] for r in json.loads(capsys.readouterr().out)["results"]]
    assert "function:json.dumps" in hits
    [index_dir] = tmp_path.glob("stdlib-*")  # beside it: towers/, the exported ONNX towers
    built = (index_dir / "CURRENT").read_text()
    assert main(["search", "default", "parse command line options", "-k", "3"]) == 0
    shown = capsys.readouterr().out
    assert (index_dir / "CURRENT").read_text() == built
    # the standard library's three command-line parsers; getopt's docstring is "Parser for command line options"
    assert any(parser in shown for parser in ("argparse", "getopt", "optparse"))
    # a default index cached by a dualsearch older than the ONNX query tower gains one on its next use
    shutil.rmtree(index_dir / "towers")
    assert main(["search", "default", "parse command line options", "-k", "3"]) == 0
    assert capsys.readouterr().out == shown and list((index_dir / "towers").glob("query-*/tower.json"))
    # it serves the towers tuned on Python questions, and records which (their changes' sha256s)
    stdlib = Manifest.read(current_version_dir(index_dir))
    assert stdlib.model == "stdlib" and stdlib.document_backend == "onnx-int8"
    assert (index_dir / TOWERS_FILE).read_text() == stdlib_towers_id()
    # a default index cached with the default towers (an older dualsearch) gains the stdlib ones on its next
    # use; its documents are encoded again only when the stdlib document tower is not the default one
    assert main(["reindex", str(index_dir), "--corpus", "default", "--model", "default"]) == 0
    assert ("encoded 0" in capsys.readouterr().out) == (STDLIB_DOCUMENT_DELTA_SHA256 is None)
    assert Manifest.read(current_version_dir(index_dir)).model == "default"
    assert main(["search", "default", "parse command line options", "-k", "3"]) == 0
    assert capsys.readouterr().out == shown
    swapped = Manifest.read(current_version_dir(index_dir))
    assert swapped.model == "stdlib" and swapped.query_weights_sha256 == stdlib.query_weights_sha256
    assert swapped.document_weights_sha256 == stdlib.document_weights_sha256 and swapped.search == stdlib.search
    # one that records other stdlib towers (or none: older than the record) is built again with these
    (index_dir / TOWERS_FILE).write_text("query 0000\ndocument default\n")
    assert main(["search", "default", "parse command line options", "-k", "3"]) == 0
    assert capsys.readouterr().out == shown and (index_dir / TOWERS_FILE).read_text() == stdlib_towers_id()
    again = Manifest.read(current_version_dir(index_dir))
    # the same towers: every document's vector copied, nothing encoded
    assert [s["files"]["vectors.f32"] for s in again.segments] == [s["files"]["vectors.f32"] for s in swapped.segments]
