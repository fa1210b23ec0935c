"""Helpers several test modules share (fixtures live in conftest.py). Test modules import from here,
from conftest-provided fixtures or from demo_server, never from one another (tests/test_layers.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dualsearch.defaults import benchmark_data_dir
from dualsearch.index import layout
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import IndexConfig

DATA_DIR = benchmark_data_dir(Path(__file__).resolve().parents[1])
CRASH_CORPUS_SIZE = 600  # three chunks of 256, so a run can die between chunks

# tiny towers trained for a few steps: fast settings of the fine-tuning tests
FAST_TRAINING = dict(
    split="test",
    epochs=1,
    batch_size=4,
    learning_rate=1e-3,
    warmup_ratio=0.0,
    max_document_length=64,
    max_query_length=32,
    dev_fraction=0.25,
    seed=1,
    interpolate=False,  # these tests look at the trained weights; interpolation has its own tests
)


def beir_data(name: str) -> Path:
    """Path of a BEIR collection, or skip the test saying where it was looked for."""
    path = DATA_DIR / name
    if not (path / "corpus.jsonl").is_file():
        pytest.skip(f"BEIR collection {name!r} not found at {path} (set DUALSEARCH_DATA to its parent folder)")
    return path


class CountingEncoder(FakeEncoder):
    """The fake towers, counting the documents they encode."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoded: list[str] = []

    def encode_documents(self, texts, show_progress=False):
        self.encoded += list(texts)
        return super().encode_documents(texts, show_progress)


def edit_manifest(index_dir, **changes):
    """Change fields of the live version's manifest.json in place (its checksum no longer matches)."""
    path = layout.current_version_dir(index_dir) / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=2))


def live_segment_dir(index_dir, position: int = 0) -> Path:
    """The directory of one segment of the live version (the first by default)."""
    from dualsearch.index.manifest import Manifest

    entry = Manifest.read(layout.current_version_dir(index_dir)).segment_entries()[position]
    return layout.segment_dir(index_dir, entry.name)


def make_legacy(index_dir):
    """CURRENT as dualsearch wrote it before the manifest's checksum was recorded: the name only."""
    pointer = index_dir / layout.CURRENT_NAME
    pointer.write_text(pointer.read_text().split()[0] + "\n")


def write_crash_corpus(path, version: str) -> dict[str, str]:
    """Short documents, and every tenth one longer than the tiny tower's window (several passages)."""
    long_tail = " ".join(f"filler{j}" for j in range(150))
    rows = [
        {
            "_id": f"d{i}",
            "text": f"document {i} {version if i % 2 else 'stable'} words {i % 13}"
            + (f" {long_tail}" if i % 10 == 0 else ""),
        }
        for i in range(CRASH_CORPUS_SIZE)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return {row["_id"]: row["text"] for row in rows}


def run_cli(*argv, kill_at=None, timeout=300):
    """``python -m dualsearch ARGV`` in its own process, optionally killed at a failpoint."""
    env = {**os.environ, "DUALSEARCH_KILL_AT": kill_at or ""}
    return subprocess.run(
        [sys.executable, "-m", "dualsearch", *argv], env=env, capture_output=True, text=True, timeout=timeout
    )


def index_contents(index_dir, model_dir) -> dict[str, str]:
    """Every document of a crash-test index (id -> text), after every checksum is verified."""
    from dualsearch.read.searcher import Searcher
    from dualsearch.towers.dual_encoder import DualEncoder

    searcher = Searcher.open(index_dir, encoder=DualEncoder.load(str(model_dir)))  # verifies every checksum
    hits = searcher.search("document", k=10 * CRASH_CORPUS_SIZE, exact=True, mode="dense")
    assert searcher.manifest.passage_count > CRASH_CORPUS_SIZE  # the long documents are several passages each
    return {r.doc_id: r.text for r in hits}


SERVICE_TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}


WAIT = {"wait": "true"}  # a write answered once searchable (the service's writes: dualsearch.service.writes)


def serve(index_dir, token=SERVICE_TOKEN, check_seconds=0.1, load_encoder=lambda manifest: FakeEncoder(), **settings):
    """``dualsearch serve`` in this process, on 127.0.0.1 and a free port: (the live index, the started server)."""
    from dualsearch.read.live_index import LiveIndex
    from dualsearch.service.app import ServiceSettings, create_app
    from dualsearch.service.server import Server

    live = LiveIndex(index_dir, load_encoder, check_seconds=check_seconds)
    server = Server(create_app(live, ServiceSettings(token=token, **settings)), "127.0.0.1", 0, token).start()
    return live, server


def error_of(response, status: int) -> dict:
    """The service's JSON error body, checked to have the given status and the one error shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()["error"]
    assert body["status"] == status and body["code"] and body["message"]
    return body


def wait_for(condition, seconds: float = 20.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


# A sharded index's tests (test_sharded_search, test_shard_ingress): documents, towers and queries
SHARD_WORDS = (
    "tea volcano lava kite river stone python list coffee mars red green lake bird wind snow iron gold "
    "forest desert cloud rain sun moon star ocean wave sand salt sugar bread milk honey apple pear plum"
).split() + [f"w{number}" for number in range(300)]
SHARD_KINDS = ("function", "class", "method")
SHARD_QUERIES = ["green tea", "volcano lava river", "kite wind", "python list sugar", "moon star ocean", "honey bread"]
SHARDS = 3


SHARDED_IVF = IndexConfig(factory="IVF16,Flat")  # approximate: a shard must visit the lists one index visits


def towers() -> FakeEncoder:
    """Fake towers; their window holds a whole document, so each has one passage. (Their cosines take
    few values when passages are short, and one index breaks ties by row: a tie at a candidate cut
    would make the comparison fail for a reason that is not the merge's.)"""
    return FakeEncoder()


def passage_towers() -> FakeEncoder:
    """Fake towers with a 40-word window: the longer documents have two passages, so a document's best
    passage may sit in a list a search does not visit (its MaxP through IVF is then not its exact one)."""
    return FakeEncoder(window=40)


def sharded_corpus(count: int = 900) -> list:
    """Documents of varied length over a large vocabulary, so that few score alike: one index breaks a
    tie at its candidate cut by row, and its shards cannot know those rows."""
    import random

    from dualsearch.corpora.document import Document

    rng = random.Random(7)
    weights = [1 / (rank + 1) for rank in range(len(SHARD_WORDS))]
    return [
        Document(
            f"d{number}",
            f"Note {number}",
            " ".join(rng.choices(SHARD_WORDS, weights, k=rng.randint(15, 60))),
            {"kind": rng.choice(SHARD_KINDS), "views": rng.randint(0, 5000)},
        )
        for number in range(count)
    ]
