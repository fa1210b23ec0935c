"""The ingress of ``dualsearch serve --ray`` (dualsearch.service.ray_serving) without Ray: the shards'
replicas run in this process behind stand-ins for Serve's handles, so the tests see every call the
ingress makes. It ranks as one process does, answers the statistics round itself once it has learnt
a shard's version, takes the stored documents that came with the candidates, and asks again when a
shard moved on."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import Counter

import pytest

from dualsearch.read.searcher import Searcher
from dualsearch.read.sharded import ShardedSearcher
from dualsearch.service import ray_serving
from dualsearch.service.ray_serving import ShardClient, ShardReplica, ShardsLive
from dualsearch.write.shard_build import build_sharded_index
from dualsearch.write.shard_writes import add_to_shards
from tests.helpers import SHARD_QUERIES as QUERIES
from tests.helpers import SHARDED_IVF as IVF
from tests.helpers import SHARDS, sharded_corpus, towers

TOKEN = "a-token-for-the-tests-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Answered:
    """A handle's response: the replica's answer, or the error it raised."""

    def __init__(self, call) -> None:
        self.value = self.error = None
        try:
            self.value = call()
            if inspect.iscoroutine(self.value):  # an async method of the deployment
                self.value = asyncio.run(self.value)
        except Exception as error:  # noqa: BLE001 - given back by result(), as Serve does
            self.error = error

    def result(self, timeout_s=None):
        if self.error is not None:
            raise self.error
        return self.value


class Handle:
    """A deployment handle whose one replica runs here; ``calls`` counts each method asked for."""

    def __init__(self, replica: ShardReplica) -> None:
        self.replica, self.calls = replica, Counter()

    def __getattr__(self, method: str):
        handle = self

        class Method:
            @staticmethod
            def remote(*args):
                handle.calls[method] += 1
                return Answered(lambda: getattr(handle.replica, method)(*args))

        return Method


@pytest.fixture
def sharded(tmp_path):
    index_dir = tmp_path / "sharded"
    build_sharded_index(sharded_corpus(300), index_dir, towers(), SHARDS, IVF)
    return index_dir


def shard_dirs(index_dir) -> list:
    return sorted(path for path in index_dir.iterdir() if path.name.startswith("shard-"))


def ingress(index_dir, seconds: float = 10.0) -> tuple[ShardsLive, list[Handle]]:
    replicas = [
        ShardReplica(str(directory), number, towers()) for number, directory in enumerate(shard_dirs(index_dir))
    ]
    handles = [Handle(replica) for replica in replicas]
    clients = [ShardClient(handle, f"shard-{number:03d}", seconds) for number, handle in enumerate(handles)]
    return ShardsLive(index_dir, clients, towers()), handles


@contextlib.contextmanager
def served(index_dir, refresh_seconds: float = 0.2):
    """The ingress's HTTP API, with its shards' replicas and writers in this process (the writers'
    refreshers run in threads, as a server's do)."""
    from fastapi.testclient import TestClient

    from dualsearch.service.app import ServiceSettings, create_app
    from dualsearch.service.ray_serving import ShardWriter, ShardWrites

    live, handles = ingress(index_dir)
    writers = [ShardWriter(str(directory), refresh_seconds, towers()) for directory in shard_dirs(index_dir)]
    clients = [ShardClient(Handle(writer), f"shard-{n:03d}-writer", 10.0) for n, writer in enumerate(writers)]
    settings = ServiceSettings(token=TOKEN, refresh_seconds=refresh_seconds)
    app = create_app(live, settings, writes=ShardWrites(live, clients))
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            yield client, live, handles
    finally:
        for writer in writers:
            writer.writes.close()
            writer.live.close()


def calls(handles: list[Handle], method: str) -> int:
    return sum(handle.calls[method] for handle in handles)


@pytest.mark.parametrize(
    "options",
    [{"mode": "dense"}, {"mode": "lexical"}, {"mode": "hybrid"}, {"mode": "hybrid", "filter": {"kind": "class"}},
     {"mode": "hybrid", "prior_field": "views", "prior_weight": 0.3},
     {"mode": "dense", "boosts": (("kind", "class", 0.1),)}],
    ids=lambda options: ",".join(f"{k}={v}" for k, v in options.items()),
)  # fmt: skip
def test_the_ingress_answers_as_the_shards_searched_in_one_process(sharded, options):
    live, _ = ingress(sharded)
    with ShardedSearcher.open(sharded, encoder=towers()) as reference:
        for query in QUERIES * 2:  # the second time, the statistics come from what the ingress learnt
            with live.lease() as searcher:
                found = searcher.search(query, k=5, **options)
            assert found == reference.search(query, k=5, **options)
    assert any(found)


def test_a_search_whose_terms_the_ingress_knows_takes_one_round(sharded):
    live, handles = ingress(sharded)
    with live.lease() as searcher:
        searcher.search("green tea", k=5, mode="hybrid")
    assert calls(handles, "statistics") == SHARDS  # learnt: the version, the documents, the two terms
    before = {method: calls(handles, method) for method in ("statistics", "candidates", "stored_hits")}
    with live.lease() as searcher:
        searcher.search("tea green", k=5, mode="hybrid")
        searcher.search("volcano", k=5, mode="dense")  # a dense search reads no term
    after = {method: calls(handles, method) - before[method] for method in before}
    assert after == {"statistics": 0, "candidates": 2 * SHARDS, "stored_hits": 0}
    with live.lease() as searcher:
        searcher.search("kite river", k=5, mode="lexical")  # new terms: the shards are asked
        searcher.search("green tea", k=5, filter={"kind": "class"})  # a filter's passages: asked each time
    assert calls(handles, "statistics") - before["statistics"] == 2 * SHARDS


def test_the_fetch_round_asks_only_for_documents_that_did_not_come_with_the_candidates(sharded):
    live, handles = ingress(sharded)
    with live.lease() as searcher:
        searcher.prefetch = 1  # one document a side: most of a top 10 must be fetched
        found = searcher.search("green tea", k=10, mode="hybrid")
    assert len(found) == 10 and 1 <= calls(handles, "stored_hits") <= SHARDS
    with ShardedSearcher.open(sharded, encoder=towers()) as reference:
        assert found == reference.search("green tea", k=10, mode="hybrid")


def test_a_shard_that_published_is_searched_on_its_new_version(sharded, monkeypatch):
    from dualsearch.corpora.document import Document

    monkeypatch.setattr(ray_serving, "KEEP_VERSIONS", 1)  # the version the ingress learnt closes at once
    live, handles = ingress(sharded)
    with live.lease() as searcher:
        assert searcher.search("zebrafish fins", k=1, mode="lexical") == []  # learnt: no document has them
    add_to_shards(sharded, [Document("new", "Fins", "zebrafish fins regrow zebrafish fins", {})], towers())
    with live.lease() as searcher:  # the ingress still knows the old versions: one round finds one gone
        assert [r.doc_id for r in searcher.search("zebrafish fins", k=1, mode="lexical")] == ["new"]
    assert calls(handles, "candidates") == 3 * SHARDS  # the first search, the try on the old versions, the retry
    assert calls(handles, "statistics") == SHARDS + 1  # only the shard that published was asked again


class Silent(Handle):
    """A deployment none of whose replicas answers (all dead, or failing to start)."""

    def __getattr__(self, method: str):
        handle = self

        class NoAnswer:
            def result(self, timeout_s=None):
                raise TimeoutError

        class Method:
            @staticmethod
            def remote(*args):
                handle.calls[method] += 1
                return NoAnswer() if method != "describe" else Answered(lambda: handle.replica.describe())

        return Method


@pytest.fixture
def one_shard_silent(sharded):
    """The HTTP API of an ingress whose shard 1 has no healthy replica (its description still known)."""
    with served(sharded) as (client, live, handles):
        live.clients[1].handle = Silent(handles[1].replica)
        yield client


def test_a_shard_with_no_healthy_replica_gives_503_naming_it(one_shard_silent):
    answer = one_shard_silent.get("/search", params={"q": "green tea"})
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    error = answer.json()["error"]
    assert error["code"] == "shard_unavailable" and "shard-001" in error["message"]


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_a_partial_search_answers_from_the_other_shards_and_says_which_is_missing(one_shard_silent, sharded, mode):
    answer = one_shard_silent.post("/search", json={"query": "green tea", "k": 5, "mode": mode, "partial": True})
    assert answer.status_code == 200
    record = answer.json()
    assert record["partial"] is True and record["missing_shards"] == ["shard-001"]
    from dualsearch.index.shards import shard_of

    ids = [result["id"] for result in record["results"]]
    assert ids and all(shard_of(doc_id, SHARDS) != 1 for doc_id in ids)
    with ShardedSearcher.open(sharded, encoder=towers()) as reference:  # what shards 0 and 2 hold, in order
        whole = [r.doc_id for r in reference.search("green tea", k=50, mode=mode) if shard_of(r.doc_id, SHARDS) != 1]
    if mode == "dense":  # BM25's statistics lack shard 1's part, so only the towers' order is the same
        assert ids == whole[: len(ids)]
    healthy = one_shard_silent.get("/search", params={"q": "green tea", "mode": mode}).json()
    assert healthy["error"]["code"] == "shard_unavailable"  # not asked for: no silent partial answers


def test_a_write_is_logged_by_the_shard_that_owns_it_and_searchable_within_its_refresh(sharded):
    from dualsearch.index.shards import shard_of

    record = {"_id": "fins", "title": "Fins", "text": "zebrafish fins regrow zebrafish fins"}
    with served(sharded, refresh_seconds=0.2) as (client, _, _):
        answer = client.post("/documents", json=[record], headers=AUTH)
        assert answer.status_code == 202 and answer.json()["added"] == 1 and not answer.json()["searchable"]
        started, found = time.monotonic(), []
        while not found and time.monotonic() - started < 10:
            found = client.get("/search", params={"q": "zebrafish fins", "k": 1, "mode": "lexical"}).json()["results"]
        assert found[0]["id"] == "fins" and time.monotonic() - started < 5  # a refresh, then the next searches
        owner = shard_of("fins", SHARDS)
        for number, directory in enumerate(shard_dirs(sharded)):  # in the owner's log and version only
            with Searcher.open(directory, encoder=towers()) as shard:
                assert (shard.document("fins") is not None) == (number == owner)
        stats = client.get("/stats", headers=AUTH).json()["writes"]
        assert stats["pending"] == 0 and set(stats["shards"]) == {f"shard-{n:03d}" for n in range(SHARDS)}
        gone = client.delete("/documents/fins", params={"wait": "true"}, headers=AUTH)
        assert gone.status_code == 200 and gone.json()["deleted"] == 1 and gone.json()["searchable"]
        assert client.get("/search", params={"q": "zebrafish fins", "mode": "lexical"}).json()["results"] == []
        unknown = client.delete("/documents/fins", headers=AUTH)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_document"
        several = [{"_id": f"new-{n}", "text": f"kite river stone {n}"} for n in range(6)]
        assert len({shard_of(r["_id"], SHARDS) for r in several}) > 1  # one write, more than one shard
        answer = client.post("/documents", params={"wait": "true"}, json=several, headers=AUTH)
        assert answer.status_code == 200 and answer.json()["added"] == 6 and answer.json()["searchable"]
        assert client.get("/documents/new-5").json()["id"] == "new-5"
