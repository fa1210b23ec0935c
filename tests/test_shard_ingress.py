"""The ingress of ``dualsearch serve --ray`` (dualsearch.service.ray_serving) without Ray: the shards'
replicas run in this process behind stand-ins for Serve's handles, so the tests see every call the
ingress makes. It ranks as one process does, answers the statistics round itself once it has learnt
a shard's version, takes the stored documents that came with the candidates, and asks again when a
shard moved on."""

from __future__ import annotations

from collections import Counter

import pytest

from dualsearch.read.sharded import ShardedSearcher
from dualsearch.service import ray_serving
from dualsearch.service.ray_serving import ShardClient, ShardReplica, ShardsLive
from dualsearch.write.shard_build import build_sharded_index
from dualsearch.write.shard_writes import add_to_shards
from tests.helpers import SHARD_QUERIES as QUERIES
from tests.helpers import SHARDED_IVF as IVF
from tests.helpers import SHARDS, sharded_corpus, towers


class Answered:
    """A handle's response: the replica's answer, or the error it raised."""

    def __init__(self, call) -> None:
        self.value = self.error = None
        try:
            self.value = call()
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


def ingress(index_dir, seconds: float = 10.0) -> tuple[ShardsLive, list[Handle]]:
    directories = sorted(path for path in index_dir.iterdir() if path.name.startswith("shard-"))
    handles = [Handle(ShardReplica(str(directory), number, towers())) for number, directory in enumerate(directories)]
    clients = [ShardClient(handle, f"shard-{number:03d}", seconds) for number, handle in enumerate(handles)]
    return ShardsLive(index_dir, clients, towers()), handles


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
    from fastapi.testclient import TestClient

    from dualsearch.service.app import ServiceSettings, create_app
    from dualsearch.service.ray_serving import ShardWrites

    live, handles = ingress(sharded)
    live.clients[1].handle = Silent(handles[1].replica)
    with TestClient(
        create_app(live, ServiceSettings(), writes=ShardWrites(live)), base_url="http://127.0.0.1"
    ) as client:
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
