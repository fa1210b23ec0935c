"""The service's writes (dualsearch.service.writes): logged before they are answered, applied by the
refresher, replayed after a crash, merged in the background; and what a SIGKILL of the server at
each failpoint leaves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile

import httpx
import pytest

from dualsearch.corpora.document import Document
from dualsearch.index import layout
from dualsearch.index.manifest import Manifest
from dualsearch.read.live_index import LiveIndex
from dualsearch.read.searcher import Searcher
from dualsearch.service.writes import ServiceWrites
from dualsearch.testing import FakeEncoder
from dualsearch.write.merge_policy import SEGMENTS_PER_TIER
from tests.helpers import AUTH, SERVICE_TOKEN, WAIT, error_of, serve, wait_for


def held_ids(index_dir) -> set[str]:
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:  # verifies every checksum
        return {document.id for document in searcher.store.iter_documents()}


def live_manifest(index_dir) -> Manifest:
    return Manifest.read(layout.current_version_dir(index_dir))


def test_logged_writes_are_replayed_at_the_next_start(tiny_index):
    live = LiveIndex(tiny_index, lambda manifest: FakeEncoder(), check_seconds=0)
    writes = ServiceWrites(live, refresh_seconds=3600).start()  # no refresh before the stop
    assert writes.add([Document("n1", "", "a logged note")]).searchable is False
    writes.delete("tea-green")
    writes.close()
    live.close()
    assert "n1" not in held_ids(tiny_index) and "tea-green" in held_ids(tiny_index)
    live = LiveIndex(tiny_index, lambda manifest: FakeEncoder(), check_seconds=0)
    writes = ServiceWrites(live, refresh_seconds=3600).start()
    try:
        assert writes.snapshot()["pending"] == 0 and live_manifest(tiny_index).log_sequence == 2
        held = held_ids(tiny_index)
        assert "n1" in held and "tea-green" not in held
        assert not list((tiny_index / layout.LOG_DIR).glob("*.wal"))  # a version holds them all
    finally:
        writes.close()
        live.close()


def test_a_second_server_on_the_index_serves_reads_and_refuses_writes(tiny_index):
    first_live, first = serve(tiny_index)
    second_live, second = serve(tiny_index)
    try:
        with httpx.Client(base_url=first.url, timeout=30) as one, httpx.Client(base_url=second.url, timeout=30) as two:
            assert one.post("/documents", json=[{"id": "n1", "text": "a note"}], headers=AUTH).status_code == 202
            refused = error_of(two.post("/documents", json=[{"id": "n2", "text": "b"}], headers=AUTH), 409)
            assert refused["code"] == "writer_busy" and "another server" in refused["message"]
            assert two.get("/search", params={"q": "tea"}).status_code == 200
    finally:
        for server, live in ((first, first_live), (second, second_live)):
            server.stop()
            live.close()


def test_small_segments_are_merged_in_the_background(tiny_index):
    live, server = serve(tiny_index, refresh_seconds=0)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for number in range(2 * SEGMENTS_PER_TIER):  # a segment each: tier 0 fills up twice
                record = {"id": f"n{number}", "text": f"note {number} about kites"}
                assert client.post("/documents", json=[record], headers=AUTH, params=WAIT).status_code == 200
            assert wait_for(lambda: client.get("/stats").json()["writes"]["merges"] >= 1)
            assert wait_for(lambda: len(live_manifest(tiny_index).segments) < SEGMENTS_PER_TIER)
            assert client.get("/health").json()["documents"] == 26 + 2 * SEGMENTS_PER_TIER
    finally:
        server.stop()
        live.close()
    assert held_ids(tiny_index) >= {f"n{number}" for number in range(2 * SEGMENTS_PER_TIER)}


# --- SIGKILL of a server process ---------------------------------------------------------------------

SERVER = """
import sys
import tempfile
from dualsearch.read.live_index import LiveIndex
from dualsearch.service.app import ServiceSettings, create_app
from dualsearch.service.server import Server
from dualsearch.testing import FakeEncoder

index_dir, token, refresh = sys.argv[1], sys.argv[2], float(sys.argv[3])
live = LiveIndex(index_dir, lambda manifest: FakeEncoder(), check_seconds=0.2)
server = Server(create_app(live, ServiceSettings(token=token, refresh_seconds=refresh)), "127.0.0.1", 0, token)
print(server.url, flush=True)
server.run()
"""


class ServerProcess:
    """A server of ``index_dir`` with the fake towers in its own process, killed at ``kill_at``."""

    def __init__(self, index_dir, refresh_seconds: float, kill_at: str = "") -> None:
        env = {**os.environ, "DUALSEARCH_KILL_AT": kill_at}
        command = [sys.executable, "-c", SERVER, str(index_dir), SERVICE_TOKEN, str(refresh_seconds)]
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log")  # noqa: SIM115 (kept open for the life of the process)
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.url = self.process.stdout.readline().strip()

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def write_until_killed(server: ServerProcess, writes: int, wait: bool = False) -> list[str]:
    """Add one document at a time, and a delete now and then, until the server dies; returns the ids
    whose writes were acknowledged and that should be there."""
    present: list[str] = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for number in range(writes):
            try:
                record = {"id": f"k{number}", "text": f"note {number} written before a crash"}
                answer = client.post("/documents", json=[record], headers=AUTH, params=WAIT if wait else None)
                if answer.status_code in (200, 202):
                    present.append(f"k{number}")
                if number % 4 == 3:
                    doomed = present.pop(0)  # in doubt until answered: a write killed unanswered may be applied
                    if client.delete(f"/documents/{doomed}", headers=AUTH).status_code != 202:
                        present.insert(0, doomed)
            except httpx.TransportError:
                break  # killed
    return present


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kill_at", "refresh_seconds"),
    [
        ("log-append:5", 3600),  # the fifth write dies between its record's write and its fsync
        ("encoding:2", 0),  # the second refresh dies encoding its segment
        ("writing:2", 0),  # ... once the segment's files are written
        ("deleting:1", 0),  # ... once a deletion file is written
        ("before-switch:2", 0),  # ... once the new version is ready, before CURRENT names it
        ("after-switch:2", 0),  # ... right after the switch, before the log's files are removed
        ("merging:1", 0),  # a background merge dies publishing
    ],
)
def test_every_acknowledged_write_survives_a_sigkill(tiny_index, kill_at, refresh_seconds):
    server = ServerProcess(tiny_index, refresh_seconds, kill_at)
    try:
        present = write_until_killed(server, writes=4 * SEGMENTS_PER_TIER, wait=kill_at.startswith("merging"))
        assert wait_for(lambda: not server.alive(), 30), f"the server was never killed at {kill_at}"
    finally:
        server.stop()
    restarted = ServerProcess(tiny_index, refresh_seconds=0)
    try:
        with httpx.Client(base_url=restarted.url, timeout=30) as client:
            assert client.get("/health").status_code == 200, restarted.stderr()  # answered once the log is replayed
    except httpx.TransportError:
        pytest.fail(f"the restarted server failed: {restarted.stderr()}")
    finally:
        restarted.stop()
    held = held_ids(tiny_index)
    assert set(present) <= held, f"acknowledged and lost: {sorted(set(present) - held)}"
    assert "tea-green" in held  # what no write touched is still there


@pytest.mark.slow
def test_a_sigkill_while_replaying_loses_nothing(tiny_index):
    server = ServerProcess(tiny_index, refresh_seconds=3600)  # every write stays in the log
    try:
        present = write_until_killed(server, writes=6)
    finally:
        server.stop()  # SIGKILL with six writes logged, none applied
    assert len(present) == 5 and not set(present) & held_ids(tiny_index)
    replaying = ServerProcess(tiny_index, refresh_seconds=0, kill_at="log-replay:1")
    assert wait_for(lambda: not replaying.alive(), 30)
    replaying.stop()
    restarted = ServerProcess(tiny_index, refresh_seconds=0)
    try:
        with httpx.Client(base_url=restarted.url, timeout=30) as client:
            assert client.get("/health").status_code == 200
    finally:
        restarted.stop()
    assert set(present) <= held_ids(tiny_index)
