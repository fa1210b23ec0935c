"""The HTTP service (dualsearch.service): the real server on 127.0.0.1 and a random port, over an
index of the tiny corpus built with the fake encoder."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from dualsearch.corpora.document import Document
from dualsearch.errors import InvalidInputError
from dualsearch.read.live_index import LiveIndex
from dualsearch.read.searcher import Searcher
from dualsearch.requests.search import MAX_BATCH_QUERIES, MAX_QUERY_CHARS
from dualsearch.service.app import create_app
from dualsearch.service.auth import read_token
from dualsearch.service.server import Server
from dualsearch.testing import FakeEncoder
from dualsearch.towers.micro_batching import BatchingEncoder
from dualsearch.write.build import index_corpus
from dualsearch.write.lock import IndexLock
from dualsearch.write.reindex import add_documents
from tests.helpers import AUTH, SERVICE_TOKEN, WAIT, error_of, serve, wait_for

TOKEN = SERVICE_TOKEN


@pytest.fixture
def service(tiny_index):
    live, server = serve(tiny_index)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client, live
    server.stop()
    live.close()


def test_get_and_post_search_answer_like_the_searcher(service, tiny_index, fake_encoder):
    client, _ = service
    with Searcher.open(tiny_index, encoder=fake_encoder) as searcher:
        expected = [result.doc_id for result in searcher.search("how is espresso made", k=3)]
    got = client.get("/search", params={"q": "how is espresso made", "k": 3}).json()
    assert [result["id"] for result in got["results"]] == expected
    assert got["version"] == "v000001" and got["mode"] == "hybrid" and got["query"] == "how is espresso made"
    first = got["results"][0]
    assert first["rank"] == 1 and first["title"] and first["snippet"] and isinstance(first["metadata"], dict)
    posted = client.post("/search", json={"query": ["how is espresso made", "why does mars look red"], "k": 2}).json()
    assert [answer["query"] for answer in posted["answers"]] == ["how is espresso made", "why does mars look red"]
    assert [result["id"] for result in posted["answers"][0]["results"]] == expected[:2]
    assert posted["answers"][1]["results"][0]["id"] == "astro-mars"


def test_explain_gives_each_result_its_token_shares(service):
    client, _ = service
    plain = client.get("/search", params={"q": "why does mars look red", "k": 2}).json()["results"]
    assert "explanation" not in plain[0]
    explained = client.post("/search", json={"query": "why does mars look red", "k": 2, "explain": True}).json()
    for result in explained["results"]:
        explanation = result["explanation"]
        assert explanation["exact"] is True
        assert explanation["dense_score"] == pytest.approx(result["dense_score"], abs=1e-4)
        assert explanation["document_tokens"] and explanation["query_tokens"]
    assert client.get("/search", params={"q": "mars", "explain": "true"}).json()["results"][0]["explanation"]


def test_mode_and_filter_reach_the_search(service):
    client, _ = service
    lexical = client.post("/search", json={"query": "tea", "mode": "lexical", "k": 5}).json()
    assert lexical["mode"] == "lexical" and all(result["dense_score"] is None for result in lexical["results"])
    filtered = client.get("/search", params={"q": "tea", "filter": "topic=coffee", "k": 5}).json()
    assert filtered["results"] and {result["metadata"]["topic"] for result in filtered["results"]} == {"coffee"}
    posted = client.post("/search", json={"query": "tea", "filter": {"topic": "tea"}, "k": 5}).json()
    assert {result["metadata"]["topic"] for result in posted["results"]} == {"tea"}


def test_a_request_can_change_the_fusion_and_the_boosts_as_the_cli_can(service, tiny_index, fake_encoder):
    client, _ = service
    query = "which tea is oxidised the most"
    with Searcher.open(tiny_index, encoder=fake_encoder) as searcher:
        towers_only = [r.doc_id for r in searcher.search(query, k=5, dense_weight=1.0)]
        bm25_only = [r.doc_id for r in searcher.search(query, k=5, dense_weight=0.0)]
    assert towers_only != bm25_only  # the two weights rank differently here, so the override shows
    posted = client.post("/search", json={"query": query, "k": 5, "dense_weight": 0.0}).json()
    assert [result["id"] for result in posted["results"]] == bm25_only
    got = client.get("/search", params={"q": query, "k": 5, "dense_weight": 1.0}).json()
    assert [result["id"] for result in got["results"]] == towers_only
    # a large boost lifts the coffee documents above every tea document, by GET and by POST
    lifted = client.get("/search", params={"q": query, "k": 5, "boost": "topic=coffee:5"}).json()["results"]
    assert [result["metadata"]["topic"] for result in lifted[:2]] == ["coffee", "coffee"]
    assert [result["boost"] for result in lifted[:3]] == [5.0, 5.0, 0.0]
    posted = client.post("/search", json={"query": query, "k": 5, "boosts": [["topic", "coffee", 5]]}).json()
    assert [result["id"] for result in posted["results"]] == [result["id"] for result in lifted]
    unboosted = client.post("/search", json={"query": query, "k": 5, "boosts": []}).json()["results"]
    assert unboosted[0]["metadata"]["topic"] == "tea"


@pytest.mark.parametrize(
    ("request_args", "words"),
    [
        ({"method": "GET", "url": "/search", "params": {"q": "tea", "dense_weight": 2}}, "dense_weight"),
        ({"method": "GET", "url": "/search", "params": {"q": "tea", "fusion": "max"}}, "fusion"),
        ({"method": "GET", "url": "/search", "params": {"q": "tea", "boost": "topic:1"}}, "FIELD=VALUE:WEIGHT"),
        ({"method": "POST", "url": "/search", "json": {"query": "tea", "prior_weight": 0.3}}, "prior_field"),
        ({"method": "POST", "url": "/search", "json": {"query": "tea", "boosts": [["topic", "tea"]]}}, "a boost"),
    ],
)
def test_bad_ranking_changes_are_400_with_a_message(service, request_args, words):
    client, _ = service
    body = error_of(client.request(**request_args), 400)
    assert body["code"] == "invalid_input" and words.lower() in body["message"].lower()


@pytest.mark.parametrize(
    ("request_args", "words"),
    [
        ({"method": "GET", "url": "/search", "params": {"q": "  "}}, "empty query"),
        ({"method": "GET", "url": "/search", "params": {"q": "tea", "k": 0}}, "k"),
        ({"method": "GET", "url": "/search", "params": {"q": "tea", "k": 101}}, "k"),
        ({"method": "GET", "url": "/search", "params": {"q": "tea", "k": "ten"}}, "k"),
        ({"method": "GET", "url": "/search", "params": {"q": "x" * (MAX_QUERY_CHARS + 1)}}, "characters"),
        ({"method": "GET", "url": "/search", "params": {"q": "tea", "mode": "fuzzy"}}, "fuzzy"),
        ({"method": "GET", "url": "/search", "params": {"q": "tea", "filter": "topic"}}, "expected FIELD=VALUE"),
        ({"method": "GET", "url": "/search", "params": {"q": "tea", "filter": "colour=red"}}, "colour"),
        ({"method": "GET", "url": "/search"}, "q"),
        ({"method": "POST", "url": "/search", "json": {"query": ["tea"] * (MAX_BATCH_QUERIES + 1)}}, "at most"),
        ({"method": "POST", "url": "/search", "json": {"query": []}}, "non-empty list"),
        ({"method": "POST", "url": "/search", "json": {"query": 7}}, "query"),
        (
            {
                "method": "POST",
                "url": "/search",
                "content": b"{not json",
                "headers": {"content-type": "application/json"},
            },
            "JSON",
        ),
    ],
)
def test_bad_search_requests_are_400_with_a_message(service, request_args, words):
    client, _ = service
    body = error_of(client.request(**request_args), 400)
    assert body["code"] == "invalid_input" and words.lower() in body["message"].lower()


def test_documents_are_fetched_added_replaced_and_deleted_with_the_token(service):
    client, live = service
    assert client.get("/documents/tea-green").json()["title"] == "Green tea"
    error_of(client.get("/documents/no-such-doc"), 404)
    lines = "\n".join(
        json.dumps(record) for record in [{"id": "n1", "text": "a brand new gadget"}, {"id": "n2", "text": "x"}]
    )
    ndjson = AUTH | {"content-type": "application/x-ndjson"}
    added = client.post("/documents", content=lines, headers=ndjson, params=WAIT)
    assert added.status_code == 200
    assert added.json() | {"sequence": 0} == {
        "sequence": 0,
        "added": 2,
        "updated": 0,
        "deleted": 0,
        "searchable": True,
        "version": "v000002",
    }
    # with wait, the writer's own next read sees its write: the service swapped before answering
    assert client.get("/search", params={"q": "brand new gadget", "k": 1}).json()["results"][0]["id"] == "n1"
    replaced = client.post("/documents", json=[{"id": "n1", "text": "a different gadget"}], headers=AUTH, params=WAIT)
    assert (replaced.json()["added"], replaced.json()["updated"]) == (0, 1)
    assert client.get("/documents/n1").json()["text"] == "a different gadget"
    deleted = client.delete("/documents/n1", headers=AUTH, params=WAIT).json()
    # v000004 or later: the replaced document left half of v000002's segment deleted, which a background
    # merge may rewrite in between
    assert deleted["deleted"] == 1 and deleted["searchable"] and deleted["version"] >= "v000004"
    error_of(client.get("/documents/n1"), 404)
    error_of(client.delete("/documents/n1", headers=AUTH), 404)
    assert live.swaps >= 3


def test_a_write_is_acknowledged_once_logged_and_searchable_at_the_next_refresh(service):
    client, live = service
    logged = client.post("/documents", json=[{"id": "n1", "text": "a brand new gadget"}], headers=AUTH)
    assert logged.status_code == 202
    assert logged.json()["searchable"] is False and logged.json()["version"] is None
    # the writes not yet applied count: the id is known to a second write and to a delete
    again = client.post("/documents", json=[{"id": "n1", "text": "another gadget"}], headers=AUTH).json()
    assert (again["added"], again["updated"]) == (0, 1)
    assert client.delete("/documents/n1", headers=AUTH).status_code == 202
    error_of(client.delete("/documents/n1", headers=AUTH), 404)
    assert wait_for(lambda: client.get("/stats").json()["writes"]["pending"] == 0)
    error_of(client.get("/documents/n1"), 404)
    assert client.get("/health").json()["documents"] == 26


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"[]", "no documents"),
        (b"", "no documents"),
        (b'[{"id": "a"}]', "text"),
        (b'[{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]', "duplicate"),
        (b"[1, 2]", "JSON object"),
        (b'{"id": "a", "text": "x"}\n{broken', "JSON"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_bad_documents_are_400_and_change_nothing(service, body, words):
    client, _ = service
    error = error_of(client.post("/documents", content=body, headers=AUTH), 400)
    assert words.lower() in error["message"].lower()
    assert client.get("/health").json()["version"] == "v000001"


def test_writes_need_the_right_token(service):
    client, _ = service
    record = [{"id": "n1", "text": "hello"}]
    missing = client.post("/documents", json=record)
    assert error_of(missing, 401)["code"] == "unauthorized" and missing.headers["www-authenticate"].startswith("Bearer")
    assert error_of(client.post("/documents", json=record, headers={"Authorization": "Bearer wrong"}), 403)
    assert error_of(client.delete("/documents/tea-green", headers={"Authorization": "Basic " + TOKEN}), 403)
    assert error_of(client.delete("/documents/tea-green"), 401)
    assert client.get("/health").json()["version"] == "v000001"


def test_without_a_token_writes_are_refused_and_reads_open_on_loopback(tiny_index):
    live, server = serve(tiny_index, token=None)
    try:
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/search", params={"q": "tea"}).status_code == 200
            assert "without one" in error_of(client.post("/documents", json=[{"id": "a", "text": "b"}]), 403)["message"]
    finally:
        server.stop()
        live.close()


def test_reads_need_the_token_when_the_server_says_so(tiny_index):
    live, server = serve(tiny_index, reads_need_token=True)
    try:
        with httpx.Client(base_url=server.url) as client:
            error_of(client.get("/search", params={"q": "tea"}), 401)
            error_of(client.get("/stats"), 401)
            assert client.get("/search", params={"q": "tea"}, headers=AUTH).status_code == 200
            assert client.get("/health").status_code == 200  # probes carry no token
    finally:
        server.stop()
        live.close()


def test_a_non_loopback_bind_without_a_token_is_refused(tiny_index):
    live = LiveIndex(tiny_index, lambda model: FakeEncoder(), check_seconds=0)
    app = create_app(live)
    with pytest.raises(InvalidInputError, match="without a token"):
        Server(app, "0.0.0.0", 0, token=None)
    live.close()


def test_the_cli_refuses_a_non_loopback_bind_without_a_token_before_loading_anything(tiny_index, capsys, monkeypatch):
    from dualsearch.cli import main

    monkeypatch.delenv("DUALSEARCH_TOKEN", raising=False)
    assert main(["serve", str(tiny_index), "--host", "0.0.0.0", "--port", "0"]) == 1
    assert "without a token" in capsys.readouterr().err


def test_tokens_come_from_a_file_or_the_environment_and_must_be_long(tmp_path, monkeypatch):
    monkeypatch.delenv("DUALSEARCH_TOKEN", raising=False)
    assert read_token(None) is None
    monkeypatch.setenv("DUALSEARCH_TOKEN", TOKEN)
    assert read_token(None) == TOKEN
    (tmp_path / "token").write_text(f"{TOKEN[::-1]}\n")
    assert read_token(tmp_path / "token") == TOKEN[::-1]
    (tmp_path / "short").write_text("abc")
    with pytest.raises(InvalidInputError, match="at least 16"):
        read_token(tmp_path / "short")
    with pytest.raises(InvalidInputError, match="cannot read"):
        read_token(tmp_path / "missing")


def test_an_oversized_body_is_413_before_it_is_read(tiny_index):
    live, server = serve(tiny_index, max_body_bytes=1000)
    try:
        with httpx.Client(base_url=server.url) as client:
            big = [{"id": f"d{number}", "text": "word " * 50} for number in range(10)]
            assert error_of(client.post("/documents", json=big, headers=AUTH), 413)["code"] == "too_large"

            def chunks():  # no Content-Length: the limit holds on a streamed body too
                for _ in range(20):
                    yield b" " * 100

            error_of(client.post("/search", content=chunks(), headers={"content-type": "application/json"}), 413)
            assert client.get("/health").json()["version"] == "v000001"
    finally:
        server.stop()
        live.close()


def test_a_writer_of_another_process_is_409_with_retry_after(service, tiny_index):
    client, _ = service
    with IndexLock(tiny_index):
        busy = client.delete("/documents/tea-green", headers=AUTH)
        assert error_of(busy, 409)["code"] == "writer_busy" and busy.headers["retry-after"] == "5"
    assert client.delete("/documents/tea-green", headers=AUTH, params=WAIT).status_code == 200


def test_writers_of_one_server_take_turns_instead_of_failing(service, tiny_index):
    client, _ = service
    bodies = [[{"id": f"turn-{n}-{m}", "text": f"note {n} {m} about kites"} for m in range(20)] for n in range(6)]
    with ThreadPoolExecutor(6) as pool:
        statuses = list(
            pool.map(lambda body: client.post("/documents", json=body, headers=AUTH, params=WAIT).status_code, bodies)
        )
    assert statuses == [200] * 6
    assert client.get("/health").json()["documents"] == 26 + 6 * 20


def test_no_index_is_503_until_one_is_published(tmp_path):
    index_dir = tmp_path / "later"
    live, server = serve(index_dir)
    try:
        with httpx.Client(base_url=server.url) as client:
            assert error_of(client.get("/health"), 503)["code"] == "no_index"
            error_of(client.get("/search", params={"q": "tea"}), 503)
            error_of(client.post("/documents", json=[{"id": "a", "text": "b"}], headers=AUTH), 503)
            assert client.get("/stats").json()["index"]["available"] is False
            index_corpus("tiny", index_dir, FakeEncoder())
            assert wait_for(lambda: client.get("/health").status_code == 200)
            assert client.get("/search", params={"q": "green tea", "k": 1}).json()["results"][0]["id"] == "tea-green"
    finally:
        server.stop()
        live.close()


def test_a_reindex_by_another_writer_is_served_without_a_restart(service, tiny_index, fake_encoder):
    client, _ = service
    add_documents(tiny_index, [Document("z1", "Zebra", "zebras have black and white stripes")], fake_encoder)
    assert wait_for(lambda: client.get("/health").json()["version"] == "v000002")
    assert client.get("/search", params={"q": "zebra stripes", "k": 1}).json()["results"][0]["id"] == "z1"


def test_markup_in_documents_comes_back_as_json_data(service):
    client, _ = service
    title = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    record = {"id": "xss", "title": title, "text": "<b>bold</b> zebra"}
    client.post("/documents", json=[record], headers=AUTH, params=WAIT)
    response = client.get("/search", params={"q": "zebra", "k": 1})
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    result = response.json()["results"][0]
    assert (result["id"], result["title"]) == ("xss", title)
    assert client.get("/documents/xss").json()["text"] == "<b>bold</b> zebra"


def test_a_fault_is_a_json_500_and_the_connection_stays_usable(service, monkeypatch):
    client, live = service

    def broken(*args, **kwargs):
        raise RuntimeError("faiss exploded")

    with live.lease() as searcher:
        monkeypatch.setattr(searcher, "search_batch", broken)
    body = error_of(client.get("/search", params={"q": "tea"}), 500)
    assert body["code"] == "internal_error" and "faiss exploded" not in body["message"]
    assert client.get("/health").status_code == 200


def test_stats_and_the_openapi_docs(service):
    client, _ = service
    for _ in range(3):
        client.get("/search", params={"q": "tea"})
    client.get("/search", params={"q": ""})
    stats = client.get("/stats").json()
    assert stats["index"]["documents"] == 26 and stats["index"]["version"] == "v000001"
    assert stats["index"]["towers"]["model"] == "fake" and stats["index"]["faiss"]["factory"].startswith("IVF")
    searches = stats["requests"]["GET /search"]
    assert searches["count"] == 4 and searches["by_status"] == {"200": 3, "400": 1}
    assert 0 < searches["latency_ms"]["p50"] <= searches["latency_ms"]["p99"]
    assert stats["uptime_seconds"] > 0
    assert stats["worker_threads"] == 2 * (os.cpu_count() or 1)  # not AnyIO's 40: requests queue in the loop
    assert client.get("/docs").status_code == 200
    assert "/documents/{doc_id}" in client.get("/openapi.json").json()["paths"]
    error_of(client.get("/no-such-route"), 404)


def test_a_swap_waits_for_requests_in_flight(tiny_index, fake_encoder):
    with LiveIndex(tiny_index, lambda model: fake_encoder, check_seconds=0) as live:
        with live.lease() as old:
            add_documents(tiny_index, [Document("z1", "", "zebra")], fake_encoder)
            assert live.refresh()
            assert old.search("green tea", k=1)[0].doc_id == "tea-green"  # still open mid-request
            with live.lease() as new:
                assert new.version_dir.name == "v000002" and len(new) == 27
        with pytest.raises(Exception, match="closed"):
            old.search("green tea", k=1)  # closed once its last lease ended


@pytest.mark.slow
def test_concurrent_searches_during_swaps_never_fail(tiny_index, fake_encoder):
    live, server = serve(tiny_index, load_encoder=lambda model: BatchingEncoder(FakeEncoder()))
    client = httpx.Client(base_url=server.url)
    failures, stop = [], threading.Event()

    def search_loop():
        with httpx.Client(base_url=server.url) as own:
            while not stop.is_set():
                response = own.get("/search", params={"q": "green tea", "k": 3})
                if response.status_code != 200:
                    failures.append(response.text)

    threads = [threading.Thread(target=search_loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    for number in range(5):
        add_documents(tiny_index, [Document(f"z{number}", "", f"zebra number {number}")], fake_encoder)
        time.sleep(0.15)
    stop.set()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        assert wait_for(lambda: client.get("/health").json()["version"] == "v000006")
        batching = client.get("/stats").json()["index"]["query_batches"]
        assert 0 < batching["batches"] <= batching["queries"]
    finally:
        client.close()
        server.stop()
        live.close()


def readme_curl_lines() -> list[str]:
    """The curl lines of docs/service.md's quick start."""
    guide = (Path(__file__).resolve().parents[1] / "docs" / "service.md").read_text(encoding="utf-8")
    section = guide.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.startswith("curl ")]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (make test installs it)")
def test_the_documented_curl_example_runs_against_a_real_server(service, monkeypatch):
    client, _ = service
    port = client.base_url.port
    outputs = []
    for line in readme_curl_lines():
        command = line.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        done = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ | {"DUALSEARCH_TOKEN": TOKEN},
        )
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout))
    assert len(outputs) == 6 and not any("error" in output for output in outputs)
    first, batch, added, fetched, deleted, stats = outputs
    assert first["results"][0]["id"] == "coffee-espresso" and len(first["results"]) == 3
    assert [len(answer["results"]) for answer in batch["answers"]] == [2, 2]
    assert added["added"] == 1 and fetched["title"] == "Mint tea" and deleted["deleted"] == 1
    assert stats["requests"]["POST /documents"]["count"] == 1


@pytest.mark.slow
def test_dualsearch_serve_runs_as_a_user_runs_it(tmp_path, tiny_model_dir, tiny_encoder):
    """The command itself, in its own process, over an index built with tiny real towers."""
    index_dir = tmp_path / "index"
    index_corpus("tiny", index_dir, tiny_encoder)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    command = [
        sys.executable,
        "-m",
        "dualsearch",
        "serve",
        str(index_dir),
        "--port",
        "0",
        "--token-file",
        str(token_file),
    ]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first_line = server.stdout.readline()
        url = re.search(r"on (http://127\.0\.0\.1:\d+) ", first_line).group(1)
        assert "writes need the token" in first_line
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/health").json()["documents"] == 26
            results = client.get("/search", params={"q": "how is espresso made", "k": 3}).json()["results"]
            assert len(results) == 3
            added = client.post("/documents", json=[{"id": "n1", "text": "new"}], headers=AUTH).json()
            assert added["added"] == 1
            assert client.get("/stats").json()["index"]["query_batches"]["queries"] >= 1
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()
        server.wait()


def test_responses_are_not_held_back_by_nagle(tiny_index):
    """Headers and body go out as two writes; without TCP_NODELAY the second waits for the client's
    delayed ACK (40 ms a request on Linux). Accepted connections inherit the listening socket's option."""
    import socket

    live, server = serve(tiny_index)
    try:
        assert server.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.stop()
        live.close()


def test_the_printed_address_accepts_connections_before_the_server_runs(tiny_index):
    """`dualsearch serve` prints its URL before uvicorn starts (and runs the app's lifespan): a client
    that connects at once must queue, not be refused."""
    import socket

    live = LiveIndex(tiny_index, lambda manifest: FakeEncoder())
    server = Server(create_app(live), "127.0.0.1", 0)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            pass  # accepted into the backlog while nothing serves yet
    finally:
        server.socket.close()
        live.close()
