"""The service's writes under load, through SIGKILLs, and with the real towers.

    python -m bench service_writes [--documents 10000] [--seconds 60] [--kills 10]
                                   [--data ../shared/data] [--scifact-index DIR] [--skip-real]

1. **Load**: a server over an index of synthetic documents, with the test towers
   (``dualsearch.testing.FakeEncoder``: the index's cost is measured, not the model's) and the shipped
   refresh interval, in its own process on 127.0.0.1. For ``--seconds``, 4 writers (each adds one new
   document at a time, and deletes one of its own now and then) and 16 readers (``GET /search``).
   Reported: failed requests (any status but 200/202, or a broken connection), write and read latency
   percentiles; then, once the log is applied, acknowledged writes missing from the index (adds
   absent, deletes still present).
2. **SIGKILLs**: ``--kills`` times, the same load runs and the server is killed (SIGKILL) at a random
   moment between 2 and 8 seconds in; the server is started again, and the index, opened with every
   checksum verified, must hold every acknowledged add and none of the acknowledged deletes (a write
   whose request was cut by the kill is in doubt and not counted either way).
3. **Real towers**: ``dualsearch serve`` (shipped defaults) over the SciFact index built with the default
   towers (``--scifact-index``; built here when missing, a few minutes), one client adding one
   document at a time: seconds to acknowledged (202), and with ``?wait=true`` to searchable (200).

Writes results/service_writes.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import DEFAULT_DATA, percentile_ms, write_result

logger = logging.getLogger(__name__)
TOKEN = "bench-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRITERS, READERS = 4, 16
SERVING = re.compile(r"on (http://127\.0\.0\.1:\d+) ")
FAKE_SERVER = """
import sys
from dualsearch.read.live_index import LiveIndex
from dualsearch.service.app import ServiceSettings, create_app
from dualsearch.service.server import Server
from dualsearch.testing import FakeEncoder

index_dir, token = sys.argv[1], sys.argv[2]
live = LiveIndex(index_dir, lambda manifest: FakeEncoder(dimension=384))
server = Server(create_app(live, ServiceSettings(token=token)), "127.0.0.1", 0, token)
print(server.url, flush=True)
try:
    server.run()
finally:
    live.close()
"""


class FakeTowersServer:
    """The service over ``index_dir`` with the test towers, in its own process."""

    def __init__(self, index_dir: Path) -> None:
        command = [sys.executable, "-c", FAKE_SERVER, str(index_dir), TOKEN]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = self.process.stdout.readline().strip()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Ledger:
    """What the writers were told, and what no one can know (requests cut by a kill)."""

    added: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    in_doubt: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Timings:
    writes: list[float] = field(default_factory=list)
    reads: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, kind: str, seconds: float, problem: str | None) -> None:
        with self.lock:
            (self.writes if kind == "write" else self.reads).append(seconds)
            if problem is not None:
                self.failed.append(problem)


def writer(url: str, name: str, stop: threading.Event, ledger: Ledger, timings: Timings, killed: threading.Event):
    import httpx

    mine: list[str] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        number = 0
        while not stop.is_set():
            number += 1
            if number % 5 == 0 and mine:  # now and then, delete one of its own
                doc_id = mine.pop(random.randrange(len(mine)))
                request = lambda: client.delete(f"/documents/{doc_id}", headers=AUTH)  # noqa: E731
                kind = "delete"
            else:
                doc_id = f"{name}-{number}"
                record = {"id": doc_id, "title": f"note {number}", "text": f"a note of {name} about lanterns {number}"}
                request = lambda: client.post("/documents", json=[record], headers=AUTH)  # noqa: E731
                kind = "add"
            started = time.perf_counter()
            try:
                status = request().status_code
            except Exception as error:  # a broken connection
                if killed.is_set():
                    with ledger.lock:
                        ledger.in_doubt.add(doc_id)
                    return
                timings.note("write", time.perf_counter() - started, f"{kind} {doc_id}: {type(error).__name__}")
                continue
            if killed.is_set() and status not in (200, 202):
                with ledger.lock:
                    ledger.in_doubt.add(doc_id)
                return
            timings.note("write", time.perf_counter() - started, None if status in (200, 202) else f"{kind} {status}")
            with ledger.lock:
                if status in (200, 202) and kind == "add":
                    ledger.added.add(doc_id)
                    mine.append(doc_id)
                elif status in (200, 202):
                    ledger.added.discard(doc_id)
                    ledger.deleted.add(doc_id)


def reader(url: str, stop: threading.Event, timings: Timings, killed: threading.Event) -> None:
    import httpx

    words = "lanterns note falcon river stone glass copper".split()
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            query = " ".join(random.sample(words, 2))
            started = time.perf_counter()
            try:
                status = client.get("/search", params={"q": query, "k": 10}).status_code
            except Exception as error:
                if killed.is_set():
                    return
                timings.note("read", time.perf_counter() - started, f"search: {type(error).__name__}")
                continue
            if killed.is_set() and status != 200:
                return
            timings.note("read", time.perf_counter() - started, None if status == 200 else f"search {status}")


def run_load(url: str, seconds: float, ledger: Ledger, kill_after: float | None = None, server=None) -> Timings:
    timings, stop, killed = Timings(), threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=writer, args=(url, f"w{n}-{time.time_ns()}", stop, ledger, timings, killed))
        for n in range(WRITERS)
    ] + [threading.Thread(target=reader, args=(url, stop, timings, killed)) for _ in range(READERS)]
    for thread in threads:
        thread.start()
    if kill_after is not None:
        time.sleep(kill_after)
        killed.set()
        server.kill()
    else:
        time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    return timings


def index_holds(index_dir: Path) -> set[str]:
    """Every live id, read with every checksum verified."""
    from dualsearch.read.searcher import Searcher
    from dualsearch.testing import FakeEncoder

    with Searcher.open(index_dir, encoder=FakeEncoder(dimension=384)) as searcher:
        return {document.id for document in searcher.store.iter_documents()}


def settle(url: str) -> None:
    """Wait until the server has applied its log."""
    import httpx

    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(600):
            if client.get("/stats").json()["writes"]["pending"] == 0:
                return
            time.sleep(0.1)
    raise RuntimeError("the server did not apply its log within a minute")


def missing(ledger: Ledger, held: set[str]) -> dict:
    lost = sorted(ledger.added - ledger.in_doubt - held)
    undeleted = sorted((ledger.deleted - ledger.in_doubt) & held)
    return {"acknowledged_adds_missing": len(lost), "acknowledged_deletes_still_there": len(undeleted)}


def load_phase(index_dir: Path, seconds: float) -> dict:
    server, ledger = FakeTowersServer(index_dir), Ledger()
    try:
        timings = run_load(server.url, seconds, ledger)
        settle(server.url)
    finally:
        server.stop()
    return {
        "seconds": seconds,
        "writers": WRITERS,
        "readers": READERS,
        "writes": len(timings.writes),
        "reads": len(timings.reads),
        "failed_requests": len(timings.failed),
        "failures": timings.failed[:10],
        "write_ms": {
            "p50": round(percentile_ms(timings.writes, 50), 1),
            "p95": round(percentile_ms(timings.writes, 95), 1),
        },
        "read_ms": {
            "p50": round(percentile_ms(timings.reads, 50), 1),
            "p95": round(percentile_ms(timings.reads, 95), 1),
        },
        **missing(ledger, index_holds(index_dir)),
    }


def percentiles(seconds: list[float]) -> dict:
    return {"p50": round(percentile_ms(seconds, 50), 1), "p95": round(percentile_ms(seconds, 95), 1)}


def kill_phase(index_dir: Path, kills: int) -> list[dict]:
    rounds, rng = [], random.Random(0)
    for number in range(kills):
        ledger, moment = Ledger(), rng.uniform(2.0, 8.0)
        server = FakeTowersServer(index_dir)
        run_load(server.url, 0, ledger, kill_after=moment, server=server)
        restarted = FakeTowersServer(index_dir)  # replays the log at start, before it answers
        try:
            settle(restarted.url)
        finally:
            restarted.stop()
        try:
            held, verified = index_holds(index_dir), True
        except Exception as error:  # a checksum or a count that does not match
            logger.error("round %d: the index does not verify: %s", number, error)
            held, verified = set(), False
        outcome = {"killed_after_seconds": round(moment, 2), "acknowledged": len(ledger.added) + len(ledger.deleted)}
        outcome |= {"in_doubt": len(ledger.in_doubt), "verified": verified, **missing(ledger, held)}
        logger.info("kill %d: %s", number + 1, outcome)
        rounds.append(outcome)
    return rounds


def real_towers_phase(index_dir: Path, writes: int = 10) -> dict:
    """One client adds one document at a time to the SciFact index through ``dualsearch serve``."""
    import httpx

    environment = {**os.environ, "DUALSEARCH_TOKEN": TOKEN}
    command = [sys.executable, "-m", "dualsearch", "serve", str(index_dir), "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment)
    try:
        url = SERVING.search(server.stdout.readline()).group(1)
        acknowledged, searchable = [], []
        with httpx.Client(base_url=url, timeout=120) as client:
            client.get("/search", params={"q": "warm the query tower"})
            warm = {"id": "bench-warm", "text": "a first write loads the document tower"}
            client.post("/documents", json=[warm], headers=AUTH, params={"wait": "true"}).raise_for_status()
            for number in range(writes):
                text = f"Vitamin D supplements and bone density in older adults, note {number}."
                started = time.perf_counter()
                answer = client.post("/documents", json=[{"id": f"bench-ack-{number}", "text": text}], headers=AUTH)
                acknowledged.append(time.perf_counter() - started)
                assert answer.status_code == 202, answer.text
                started = time.perf_counter()
                answer = client.post(
                    "/documents",
                    json=[{"id": f"bench-wait-{number}", "text": text}],
                    headers=AUTH,
                    params={"wait": "true"},
                )
                searchable.append(time.perf_counter() - started)
                assert answer.status_code == 200, answer.text
            found = client.get("/search", params={"q": "vitamin D bone density older adults note", "k": 50}).json()
            last = f"bench-wait-{writes - 1}"
            assert last in {result["id"] for result in found["results"]}, "the last write is not searchable"
            for number in range(writes):  # leave the index as it was
                for prefix in ("bench-ack", "bench-wait"):
                    client.delete(f"/documents/{prefix}-{number}", headers=AUTH)
            client.delete("/documents/bench-warm", headers=AUTH, params={"wait": "true"})
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    return {
        "index": "SciFact, default towers, shipped settings",
        "writes": writes,
        "acknowledged_seconds_median": round(statistics.median(acknowledged), 3),
        "acknowledged_seconds_max": round(max(acknowledged), 3),
        "searchable_seconds_median": round(statistics.median(searchable), 3),
        "searchable_seconds_max": round(max(searchable), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.service_writes", description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--scifact-index", type=Path, default=Path(tempfile.gettempdir()) / "dualsearch-bench/scifact-writes"
    )
    parser.add_argument("--skip-real", action="store_true", help="leave out the real towers' phase")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)
    from bench.writes import synthetic_documents
    from dualsearch.testing import FakeEncoder
    from dualsearch.write.build import build_index

    record: dict = {"towers": "FakeEncoder(dimension=384)", "documents": args.documents}
    with tempfile.TemporaryDirectory() as scratch:
        index_dir = Path(scratch) / "index"
        build_index(synthetic_documents(args.documents), index_dir, FakeEncoder(dimension=384))
        record["load"] = load_phase(index_dir, args.seconds)
        logger.info("load: %s", record["load"])
        record["kills"] = kill_phase(index_dir, args.kills)
    if not args.skip_real:
        from bench.service_load import ensure_index

        ensure_index(args.data / "scifact", args.scifact_index)
        record["real_towers"] = real_towers_phase(args.scifact_index)
        logger.info("real towers: %s", record["real_towers"])
    path = write_result("service_writes", record)
    logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
