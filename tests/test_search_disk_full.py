"""M3: a full disk while a version is written is one clear error (CLI) or a 507 (service), whatever
reported it (the system, SQLite or FAISS), and leaves nothing behind. The disk is filled by injection:
the writes raise what each library raises on a full disk."""

from __future__ import annotations

import errno
import sqlite3

import faiss
import httpx
import pytest

from dualsearch.cli import main
from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import DiskFullError
from dualsearch.index import layout
from dualsearch.index.store import DocumentStoreWriter
from dualsearch.index.vectors import VectorsWriter
from dualsearch.read.live_index import LiveIndex
from dualsearch.service.app import ServiceSettings, create_app
from dualsearch.service.server import Server
from dualsearch.testing import FakeEncoder
from dualsearch.towers.dual_encoder import DualEncoder
from dualsearch.write.build import build_index

TOKEN = "disk-full-token-0123456789abcdef"


def _system_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _sqlite_full(*args, **kwargs):
    raise sqlite3.OperationalError("database or disk is full")


def _faiss_full(*args, **kwargs):
    raise RuntimeError("write error in x/index.faiss: 7541 != 49152 (No space left on device)")  # as FAISS words it


# what runs out of room, and how its library says so
FULL_DISKS = {
    "vectors (OSError)": (VectorsWriter, "append", _system_full),
    "store (sqlite3)": (DocumentStoreWriter, "add", _sqlite_full),
    "index (FAISS)": (faiss, "write_index", _faiss_full),
}


@pytest.fixture(params=list(FULL_DISKS))
def full_disk(request, monkeypatch):
    owner, name, fill = FULL_DISKS[request.param]
    return lambda: monkeypatch.setattr(owner, name, fill)


@pytest.fixture
def fake_towers(monkeypatch):
    monkeypatch.setattr(DualEncoder, "load", classmethod(lambda cls, *args, **kwargs: FakeEncoder()))


def _left_behind(index_dir) -> list[str]:
    return sorted(p.name for p in index_dir.iterdir() if p.name.startswith((".build-", ".chunks")))


def test_m3_a_full_disk_during_add_is_one_line_naming_the_live_version(
    tiny_index, tmp_path, capsys, fake_towers, full_disk
):
    new = tmp_path / "new.jsonl"
    new.write_text('{"_id": "n1", "text": "a new document"}\n')
    before = (tiny_index / layout.CURRENT_NAME).read_text()
    full_disk()
    assert main(["add", str(tiny_index), str(new)]) == 1
    err = capsys.readouterr().err  # after the progress bar's line
    assert "Traceback" not in err and err.count("dualsearch: error:") == 1
    line = err.splitlines()[-1]
    assert line.startswith(f"dualsearch: error: no space left on device writing {tiny_index}")
    assert "the live version v000001 is unchanged" in line
    assert (tiny_index / layout.CURRENT_NAME).read_text() == before
    assert _left_behind(tiny_index) == []


def test_m3_a_full_disk_during_a_first_build_leaves_no_directory(tmp_path, fake_encoder, full_disk):
    index_dir = tmp_path / "index"
    full_disk()
    with pytest.raises(DiskFullError, match="no version was published"):
        build_index(read_corpus("tiny"), index_dir, fake_encoder)
    assert not index_dir.exists()


def test_m3_a_full_disk_during_a_post_is_a_507_saying_so(tiny_index, full_disk):
    live = LiveIndex(tiny_index, lambda manifest: FakeEncoder(), check_seconds=0)
    server = Server(create_app(live, ServiceSettings(token=TOKEN)), "127.0.0.1", 0, TOKEN).start()
    try:
        full_disk()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            # logged (the log's append is not what fails here), then the refresh building its segment fails
            response = client.post(
                "/documents",
                headers={"Authorization": f"Bearer {TOKEN}"},
                json=[{"id": "n1", "text": "new"}],
                params={"wait": "true"},
            )
            assert response.status_code == 507, response.text
            error = response.json()["error"]
            assert error["code"] == "insufficient_storage"
            assert "no space left on device" in error["message"] and "v000001 is unchanged" in error["message"]
            assert "the write is logged" in error["message"]
            assert client.get("/search", params={"q": "tea", "k": 1}).status_code == 200  # reads go on
    finally:
        server.stop()
        live.close()
    assert _left_behind(tiny_index) == []
