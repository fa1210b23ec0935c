"""Issue #37, the write path: a towers migration never undone by a server's write (H1), a bad prior
value refused when written (H2), DELETE asking the live version (M5), deleting the last document (L12).

Each test is named after its defect and failed before the fix."""

from __future__ import annotations

import httpx
import pytest

from dualsearch.corpora.document import Document
from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import IndexMismatchError, InvalidInputError, UnknownDocumentError
from dualsearch.index import layout
from dualsearch.index.manifest import Manifest
from dualsearch.read.live_index import LiveIndex
from dualsearch.service.app import ServiceSettings, create_app
from dualsearch.service.server import Server
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import build_index
from dualsearch.write.reindex import add_documents, delete_documents, reindex

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


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
    assert client.post("/documents", json=[{"id": "mig-0", "text": "before the migration"}], headers=AUTH).is_success
    migrate_to_dot_similarity(tiny_index)
    answer = client.post("/documents", json=[{"id": "mig-1", "text": "after the migration"}], headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json()["encoded"] == 1  # not the whole corpus again
    assert live_manifest(tiny_index).similarity == "dot"  # the migration stands
    assert client.delete("/documents/tea-green", headers=AUTH).status_code == 200
    assert live_manifest(tiny_index).similarity == "dot"
    assert [r["id"] for r in client.get("/search", params={"q": "after the migration"}).json()["results"]][0] == "mig-1"


def test_h1_a_server_with_fixed_towers_answers_409_after_a_migration(served, tiny_index):
    client = served(follow_towers=False)  # `dualsearch serve --model M`: the towers are fixed at start
    migrated = migrate_to_dot_similarity(tiny_index)
    answer = client.post("/documents", json=[{"id": "mig-1", "text": "after the migration"}], headers=AUTH)
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "towers_differ"
    assert client.delete("/documents/tea-green", headers=AUTH).json()["error"]["code"] == "towers_differ"
    assert live_manifest(tiny_index) == migrated
    assert client.get("/stats").json()["index"]["problem"]  # the old version still serves, and says why


def test_m5_delete_asks_the_live_version_not_the_one_served(served, tiny_index):
    client = served()  # no watcher: the served version stays behind other writers until a refresh
    add_documents(tiny_index, [Document("fresh-0", "", "published a moment ago")], FakeEncoder())
    assert client.delete("/documents/fresh-0", headers=AUTH).status_code == 200
    assert "fresh-0" not in {document.id for document in read_live_documents(tiny_index)}
    served_second = served()
    delete_documents(tiny_index, ["tea-green"], FakeEncoder())  # gone, while the second server still shows it
    gone = served_second.delete("/documents/tea-green", headers=AUTH)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "unknown_document"
    with pytest.raises(UnknownDocumentError):
        delete_documents(tiny_index, ["tea-green"], FakeEncoder())


def read_live_documents(index_dir) -> list[Document]:
    from dualsearch.index.store import DocumentStoreReader

    store = DocumentStoreReader(layout.current_version_dir(index_dir) / layout.STORE_FILE)
    try:
        return list(store.iter_documents())
    finally:
        store.close()


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

