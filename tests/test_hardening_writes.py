"""Issue #37, the write path: a towers migration never undone by a server's write (H1), a bad prior
value refused when written (H2), DELETE asking the live version (M5), deleting the last document (L12).

Each test is named after its defect and failed before the fix."""

from __future__ import annotations

import json
from contextlib import closing

import httpx
import pytest

from dualsearch.cli import main
from dualsearch.corpora.document import Document
from dualsearch.errors import CorpusError, IndexMismatchError, InvalidInputError, UnknownDocumentError
from dualsearch.index import layout
from dualsearch.index.config import IndexConfig
from dualsearch.index.manifest import Manifest
from dualsearch.ranking.settings import SearchSettings
from dualsearch.read.live_index import LiveIndex
from dualsearch.read.searcher import Searcher
from dualsearch.service.app import ServiceSettings, create_app
from dualsearch.service.server import Server
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import build_index, index_corpus
from dualsearch.write.reindex import add_documents, delete_documents, reindex
from dualsearch.write.version_writer import LiveVersion, VersionWriter
from tests.helpers import AUTH, SERVICE_TOKEN, WAIT

TOKEN = SERVICE_TOKEN


def towers_for(manifest: Manifest) -> FakeEncoder:
    """What `dualsearch serve` without --model loads: the towers the manifest names."""
    return FakeEncoder(similarity=manifest.similarity)


@pytest.fixture
def served(tiny_index):
    """Start a server on ``tiny_index``; yields a function taking LiveIndex options, returning a client."""
    running = []

    def start(**live_options) -> httpx.Client:
        live = LiveIndex(tiny_index, towers_for, check_seconds=0, **live_options)
        server = Server(create_app(live, ServiceSettings(token=TOKEN)), "127.0.0.1", 0, TOKEN).start()
        client = httpx.Client(base_url=server.url, timeout=30)
        running.append((client, server, live))
        return client

    yield start
    for client, server, live in running:
        client.close()
        server.stop()
        live.close()


def migrate_to_dot_similarity(index_dir) -> Manifest:
    """`dualsearch reindex DIR --corpus tiny --model OTHER` by another process: towers comparing by dot."""
    reindex(index_dir, "tiny", FakeEncoder(similarity="dot"))
    manifest = Manifest.read(layout.current_version_dir(index_dir))
    assert manifest.similarity == "dot"
    return manifest


def live_manifest(index_dir) -> Manifest:
    return Manifest.read(layout.current_version_dir(index_dir))


def test_h1_add_and_delete_refuse_towers_other_than_the_live_versions(tiny_index):
    migrated = migrate_to_dot_similarity(tiny_index)
    with pytest.raises(IndexMismatchError, match="dualsearch reindex"):
        add_documents(tiny_index, [Document("new", "", "after the migration")], FakeEncoder())
    with pytest.raises(IndexMismatchError, match="keeps the index's towers"):
        delete_documents(tiny_index, ["tea-green"], FakeEncoder())
    assert live_manifest(tiny_index) == migrated  # nothing published
    report = add_documents(tiny_index, [Document("new", "", "after the migration")], FakeEncoder(similarity="dot"))
    assert report.encoded == 1 and live_manifest(tiny_index).similarity == "dot"


def test_h1_a_server_following_the_index_serves_the_migration_and_keeps_it(served, tiny_index):
    client = served(follow_towers=True)
    assert client.post(
        "/documents", params=WAIT, json=[{"id": "mig-0", "text": "before the migration"}], headers=AUTH
    ).is_success
    migrate_to_dot_similarity(tiny_index)
    answer = client.post("/documents", params=WAIT, json=[{"id": "mig-1", "text": "after the migration"}], headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert live_manifest(tiny_index).segments[-1]["documents"] == 1  # a segment of it: not the corpus again
    assert live_manifest(tiny_index).similarity == "dot"  # the migration stands
    assert client.delete("/documents/tea-green", params=WAIT, headers=AUTH).status_code == 200
    assert live_manifest(tiny_index).similarity == "dot"
    assert [r["id"] for r in client.get("/search", params={"q": "after the migration"}).json()["results"]][0] == "mig-1"


def test_h1_a_server_with_fixed_towers_answers_409_after_a_migration(served, tiny_index):
    client = served(follow_towers=False)  # `dualsearch serve --model M`: the towers are fixed at start
    migrated = migrate_to_dot_similarity(tiny_index)
    # refused when it would be logged, not acknowledged and then never applied
    answer = client.post("/documents", json=[{"id": "mig-1", "text": "after the migration"}], headers=AUTH)
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "towers_differ"
    assert client.delete("/documents/tea-green", params=WAIT, headers=AUTH).json()["error"]["code"] == "towers_differ"
    assert live_manifest(tiny_index) == migrated
    assert client.get("/stats").json()["index"]["problem"]  # the old version still serves, and says why


def test_m5_delete_asks_the_live_version_not_the_one_served(served, tiny_index):
    client = served()  # no watcher: the served version stays behind other writers until a refresh
    add_documents(tiny_index, [Document("fresh-0", "", "published a moment ago")], FakeEncoder())
    assert client.delete("/documents/fresh-0", params=WAIT, headers=AUTH).status_code == 200
    assert "fresh-0" not in {document.id for document in read_live_documents(tiny_index)}
    delete_documents(tiny_index, ["tea-green"], FakeEncoder())  # gone, while the server still shows it
    assert client.get("/documents/tea-green").status_code == 200
    gone = client.delete("/documents/tea-green", params=WAIT, headers=AUTH)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "unknown_document"
    with pytest.raises(UnknownDocumentError):
        delete_documents(tiny_index, ["tea-green"], FakeEncoder())


def read_live_documents(index_dir) -> list[Document]:
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        return list(searcher.store.iter_documents())


def test_l12_deleting_the_last_document_is_refused_as_bad_input(tmp_path, served):
    one = tmp_path / "one"
    build_index([Document("only", "", "the one document")], one, FakeEncoder())
    pointer = (one / layout.CURRENT_NAME).read_text()
    with pytest.raises(InvalidInputError, match="no document"):
        delete_documents(one, ["only"], FakeEncoder())
    live = LiveIndex(one, towers_for, check_seconds=0)
    server = Server(create_app(live, ServiceSettings(token=TOKEN)), "127.0.0.1", 0, TOKEN).start()
    try:
        answer = httpx.delete(f"{server.url}/documents/only", headers=AUTH, timeout=30)
    finally:
        server.stop()
        live.close()
    assert answer.status_code == 400 and "at least one" in answer.json()["error"]["message"]
    assert (one / layout.CURRENT_NAME).read_text() == pointer


# H2: a prior field holds counts; a write carrying anything else is refused, naming where it came from


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def views_index(tmp_path):
    rows = [{"_id": f"d{n}", "text": f"tea note number {n}", "views": n * 3} for n in range(6)]
    index_dir = tmp_path / "views-index"
    index_corpus(write_jsonl(tmp_path / "views.jsonl", rows), index_dir, FakeEncoder(), search_settings=VIEWS_PRIOR)
    return index_dir


VIEWS_PRIOR = SearchSettings(prior_field="views", prior_weight=0.1)


@pytest.mark.parametrize("bad", ["many", -3, True, [1]])
def test_h2_index_refuses_a_bad_prior_value_naming_file_and_line(tmp_path, bad):
    rows = [{"_id": "a", "text": "tea", "views": 2}, {"_id": "b", "text": "coffee", "views": bad}]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", rows)
    with pytest.raises(CorpusError, match=r"corpus.jsonl:2: document b: the prior field 'views' must hold a non-neg"):
        index_corpus(corpus, tmp_path / "index", FakeEncoder(), search_settings=VIEWS_PRIOR)
    assert not (tmp_path / "index").exists()
    report, skipped = index_corpus(
        corpus, tmp_path / "index", FakeEncoder(), search_settings=VIEWS_PRIOR, skip_invalid=True
    )
    assert report.document_count == 1 and len(skipped) == 1


def test_h2_add_reindex_and_the_api_refuse_a_bad_prior_value_and_searches_go_on(views_index, tmp_path):
    pointer = (views_index / layout.CURRENT_NAME).read_text()
    negative = write_jsonl(tmp_path / "negative.jsonl", [{"_id": "neg", "text": "tea", "views": -3}])
    with pytest.raises(CorpusError, match="negative.jsonl:1: document neg: the prior field 'views'"):
        add_documents(views_index, negative, FakeEncoder())
    with pytest.raises(CorpusError, match="document 2: document str-views: the prior field 'views'"):
        add_documents(
            views_index, [Document("ok", "", "tea"), Document("str-views", "", "tea", {"views": "many"})], FakeEncoder()
        )
    corpus = [{"_id": f"d{n}", "text": f"tea note number {n}", "views": "many" if n == 4 else n} for n in range(6)]
    with pytest.raises(CorpusError, match="corpus.jsonl:5: document d4"):
        reindex(views_index, write_jsonl(tmp_path / "corpus.jsonl", corpus), FakeEncoder())
    with pytest.raises(CorpusError, match="the documents given: document x"):  # any other way in
        with (
            closing(LiveVersion(views_index)) as live,
            VersionWriter(views_index, FakeEncoder(), IndexConfig(), live) as writer,
        ):
            writer.write([Document("x", "", "tea", {"views": float("nan")})])
    assert (views_index / layout.CURRENT_NAME).read_text() == pointer  # nothing published
    live = LiveIndex(views_index, towers_for, check_seconds=0)
    server = Server(create_app(live, ServiceSettings(token=TOKEN)), "127.0.0.1", 0, TOKEN).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            posted = client.post(
                "/documents", params=WAIT, json=[{"id": "str-views", "text": "tea", "views": "many"}], headers=AUTH
            )
            searched = client.get("/search", params={"q": "tea note", "mode": "dense"})
    finally:
        server.stop()
        live.close()
    assert posted.status_code == 400 and "the prior field 'views'" in posted.json()["error"]["message"]
    assert searched.status_code == 200 and searched.json()["results"][0]["prior"] is not None
    assert (views_index / layout.CURRENT_NAME).read_text() == pointer


def test_h2_the_cli_refuses_a_bad_prior_value_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("dualsearch.towers.backends.load_encoder", lambda *args, **kwargs: FakeEncoder())
    corpus = write_jsonl(
        tmp_path / "negprior.jsonl", [{"_id": "a", "text": "tea", "v": 1}, {"_id": "b", "text": "x", "v": -5}]
    )
    assert main(["index", corpus, "--out", str(tmp_path / "index"), "--prior-field", "v"]) != 0
    error = capsys.readouterr().err.strip()
    assert error.startswith("dualsearch: error:") and "negprior.jsonl:2" in error and "\n" not in error
