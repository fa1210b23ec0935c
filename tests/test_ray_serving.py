"""A sharded index on Ray Serve (dualsearch.service.ray_serving): the HTTP API answers as the same
index searched in one process does, writes reach the shard that owns the id, and a replica's death
costs no request."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from dualsearch.corpora.sources import read_corpus
from dualsearch.index.shards import ShardMap, shard_of
from dualsearch.read.searcher import Searcher
from dualsearch.read.sharded import ShardedSearcher
from dualsearch.towers.dual_encoder import DualEncoder
from dualsearch.write.shard_build import build_sharded_index

pytestmark = pytest.mark.slow  # a Ray cluster, Serve's controller, proxy and replicas
QUERIES = ["green tea", "how is espresso made", "volcano", "kites in the wind"]
SHARD_SECONDS = 5.0  # the ingress's wait for a shard before it answers 503


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, token: str | None = None) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def send(url: str, method: str, body: bytes | None, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Authorization": f"Bearer {token}",
                                     "Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model_dir, ray_address):
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed (pip install 'dualsearch[ray]')")
    from ray import serve

    from dualsearch.service.app import ServiceSettings
    from dualsearch.service.ray_serving import serve_on_ray, stop_serving

    index_dir = tmp_path_factory.mktemp("ray-serving") / "sharded"
    build_sharded_index(read_corpus("tiny"), index_dir, DualEncoder.load(str(tiny_model_dir)), shards=2)
    token = "a-token-for-the-tests"
    settings = ServiceSettings.for_bind("127.0.0.1", token)
    url = serve_on_ray(index_dir, "127.0.0.1", free_port(), settings, 2, None, shard_seconds=SHARD_SECONDS)
    try:
        yield url, index_dir, token
    finally:
        stop_serving()
        serve.shutdown()


def local_ids(index_dir, query: str, **options) -> list[tuple[str, float]]:
    with ShardedSearcher.open(index_dir) as searcher:
        return [(r.doc_id, r.score) for r in searcher.search(query, k=5, **options)]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_the_service_on_ray_answers_as_the_shards_searched_in_one_process(served, mode):
    url, index_dir, _ = served
    for query in QUERIES:
        answer = get(f"{url}/search?q={urllib.parse.quote(query)}&k=5&mode={mode}")
        expected = local_ids(index_dir, query, mode=mode)
        assert [r["id"] for r in answer["results"]] == [doc_id for doc_id, _ in expected]
        assert all(abs(r["score"] - score) < 1e-5 for r, (_, score) in zip(answer["results"], expected))
        assert answer["version"] == "v000001+v000001"


def test_health_documents_and_openapi_are_the_single_server_ones(served):
    url, index_dir, _ = served
    assert get(f"{url}/health") == {"status": "ok", "version": "v000001+v000001", "documents": 26}
    assert get(f"{url}/documents/tea-green")["id"] == "tea-green"
    assert "/search" in get(f"{url}/openapi.json")["paths"]


def test_a_write_is_logged_by_the_shard_that_owns_the_id_and_searchable_within_the_refresh(served):
    url, index_dir, token = served
    record = {"_id": "tea-matcha", "title": "Matcha", "text": "Powdered green tea whisked with hot water."}
    status, answer = send(f"{url}/documents", "POST", json.dumps([record]).encode(), token)
    assert status == 202 and answer["added"] == 1 and not answer["searchable"]
    started, top = time.monotonic(), None
    while top != "tea-matcha" and time.monotonic() - started < 60:  # the first write loads the document tower
        top = (get(f"{url}/search?q=powdered+green+tea+whisked&k=3")["results"] or [{}])[0].get("id")
    assert top == "tea-matcha"
    owner = shard_of("tea-matcha", 2)
    for number, directory in enumerate(ShardMap.read(index_dir).shard_dirs(index_dir)):
        with Searcher.open(directory) as shard:
            assert (shard.document("tea-matcha") is not None) == (number == owner)
    record["text"] = "Powdered green tea, matcha, whisked into a froth."  # now the tower is loaded: one refresh
    status, answer = send(f"{url}/documents", "POST", json.dumps([record]).encode(), token)
    assert status == 202 and answer["updated"] == 1
    started = time.monotonic()
    while "froth" not in get(f"{url}/documents/tea-matcha")["text"]:
        assert time.monotonic() - started < 5, "not searchable within a few refresh intervals"
        time.sleep(0.05)
    status, answer = send(f"{url}/documents/tea-matcha?wait=true", "DELETE", None, token)
    assert status == 200 and answer["searchable"]
    assert "tea-matcha" not in [r["id"] for r in get(f"{url}/search?q=powdered+green+tea+whisked&k=3")["results"]]
    status, answer = send(f"{url}/documents", "POST", b"[]", "wrong-token")
    assert status == 403 and answer["error"]["code"] == "forbidden"


def test_killing_one_replica_of_a_shard_under_load_fails_no_request(served):
    import ray

    url, _, _ = served
    failures, answered, stop = [], [0], threading.Event()

    def client():
        while not stop.is_set():
            try:
                get(f"{url}/search?q=green+tea&k=3")
                answered[0] += 1
            except Exception as error:  # noqa: BLE001 - every failure is what the test counts
                failures.append(repr(error))

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    time.sleep(2)
    replica = next(a for a in ray.util.list_named_actors(all_namespaces=True) if "shard-000" in a["name"])
    ray.kill(ray.get_actor(replica["name"], namespace=replica["namespace"]), no_restart=True)
    killed_at = answered[0]
    time.sleep(5)
    stop.set()
    for thread in clients:
        thread.join()
    names = {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)}
    assert replica["name"] not in names  # that replica is gone (Serve starts another in its place)
    assert answered[0] > killed_at + 10 and failures == []


def test_a_shard_with_no_healthy_replica_gives_503_naming_it_or_a_flagged_partial_answer(served):
    """Runs last: it takes shard 1 down (its directory moved away, so the replicas Serve starts in place
    of the killed ones fail to open it), then brings it back."""
    import ray

    url, index_dir, _ = served
    directory = ShardMap.read(index_dir).shard_dirs(index_dir)[1]
    directory.rename(directory.with_name("away"))
    try:
        for actor in ray.util.list_named_actors(all_namespaces=True):
            if "shard-001" in actor["name"]:
                ray.kill(ray.get_actor(actor["name"], namespace=actor["namespace"]), no_restart=True)
        started = time.monotonic()
        status, answer = send(f"{url}/search?q=green+tea", "GET", None, "")
        assert status == 503 and answer["error"]["code"] == "shard_unavailable"
        assert "shard-001" in answer["error"]["message"] and time.monotonic() - started < 3 * SHARD_SECONDS
        status, answer = send(f"{url}/search?q=green+tea&partial=true", "GET", None, "")
        assert status == 200 and answer["partial"] is True and answer["missing_shards"] == ["shard-001"]
        assert answer["results"] and all(shard_of(r["id"], 2) == 0 for r in answer["results"])
    finally:
        directory.with_name("away").rename(directory)
    deadline = time.monotonic() + 120
    while send(f"{url}/search?q=green+tea", "GET", None, "")[0] != 200:  # Serve starts shard 1 again
        assert time.monotonic() < deadline, "shard 1 did not come back"
        time.sleep(1)
