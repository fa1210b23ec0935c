"""Hostile values sent to the HTTP service: every one is a 400 with the reason (never a 500), and a
refused write leaves the index as it was. Through Starlette's TestClient, on an index of the tiny
corpus built with the fake encoder."""

from __future__ import annotations

import json

import pytest

from dualsearch.read.live_index import LiveIndex
from dualsearch.service.app import ServiceSettings, create_app
from dualsearch.testing import FakeEncoder
from tests.helpers import AUTH, SERVICE_TOKEN, WAIT

TOKEN = SERVICE_TOKEN
HUGE_INTEGER = "9" * 5000


@pytest.fixture
def client(tiny_index):
    from starlette.testclient import TestClient

    live = LiveIndex(tiny_index, lambda model: FakeEncoder(), check_seconds=0.1)
    with TestClient(create_app(live, ServiceSettings(token=TOKEN)), raise_server_exceptions=False) as client:
        yield client
    live.close()


def refused(response, *words: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    for word in words:
        assert word in error["message"], error["message"]


@pytest.mark.parametrize(
    ("request_args", "words"),
    [
        ({"method": "GET", "params": {"q": "tea", "boost": "topic=tea:1e39"}}, "a boost's weight"),
        ({"method": "GET", "params": {"q": "tea", "boost": "topic=tea:1e300"}}, "a boost's weight"),
        ({"method": "GET", "params": {"q": "tea", "prior_weight": "1e308"}}, "prior_weight"),
        ({"method": "POST", "json": {"query": "tea", "boosts": [["topic", "tea", 1e308]]}}, "a boost's weight"),
        (
            {"method": "POST", "json": {"query": "tea", "boosts": ["topic=tea:3e38", "topic=tea:3e38"]}},
            "a boost's weight",
        ),
    ],
)
def test_m4_weights_beyond_the_bound_are_400_not_500(client, request_args, words):
    refused(client.request(url="/search", **request_args), words)


@pytest.mark.parametrize(
    "request_args",
    [
        {"method": "GET", "params": {"q": "tea", "filter": "topic>=100000000000000000000000"}},
        {"method": "POST", "json": {"query": "tea", "filter": {"topic": {"gte": 10**23}}}},
        {"method": "POST", "json": {"query": "tea", "filter": {"topic": [1, -(10**23)]}}},
        {"method": "GET", "params": {"q": "tea", "boost": "topic=111111111111111111111111111111:1"}},
    ],
)
def test_l1c_filter_and_boost_integers_beyond_64_bits_are_400(client, request_args):
    refused(client.request(url="/search", **request_args), "beyond 64 bits")


def test_l1d_a_filter_of_1500_conditions_is_400(client):
    refused(client.post("/search", json={"query": "tea", "filter": {f"f{i}": 1 for i in range(1500)}}), "conditions")


def test_l1e_a_deeply_nested_filter_text_is_400(client):
    deep = '{"a": ' * 30_000 + "1" + "}" * 30_000
    refused(client.post("/search", json={"query": "tea", "filter": deep}), "nested deeper than")


def test_l1_a_filter_value_with_a_lone_surrogate_is_400(client):
    body = '{"query": "tea", "filter": {"topic": "te\\ud800"}}'
    refused(client.post("/search", content=body, headers={"content-type": "application/json"}), "not valid Unicode")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("[" * 100_000 + "]" * 100_000, ["nested deeper than"]),
        ('{"id": "deep", "text": "x", "m": ' + "[" * 100_000 + "]" * 100_000 + "}", ["line 1", "nested deeper"]),
        ('[{"id": "deep", "text": "x", "m": ' + "[" * 50 + "]" * 50 + "}]", ["record 1", "nested deeper than 32"]),
        ('[{"id": "big", "text": "x", "n": ' + HUGE_INTEGER + "}]", ["an integer of 5,000 digits"]),
        ('[{"id": ' + HUGE_INTEGER + ', "text": "x"}]', ["an integer of 5,000 digits"]),
        ('[{"id": "big", "text": "x", "n": 100000000000000000000000}]', ["record 1", "beyond 64 bits"]),
        ('[{"id": 100000000000000000000000, "text": "x"}]', ["record 1", "64 bits"]),
        ('[{"id": "mnd", "text": "x", "metadata": [1, 2]}]', ["record 1", "'metadata' must be an object"]),
    ],
)
def test_l1ab_l8_hostile_documents_are_400_and_change_nothing(client, tiny_index, body, words):
    before = sorted(path.name for path in tiny_index.iterdir())
    refused(client.post("/documents", params=WAIT, content=body.encode(), headers=AUTH), *words)
    assert sorted(path.name for path in tiny_index.iterdir()) == before


def test_l9_metadata_keys_with_quotes_and_backslashes_are_filtered_and_boosted_on(client):
    record = {"id": "odd", "text": "a plain document", "metadata": {'a"b': "x", "h\\i": "u"}}
    assert client.post("/documents", params=WAIT, json=[record], headers=AUTH).status_code == 200
    assert client.get("/documents/odd").json()["metadata"] == {'a"b': "x", "h\\i": "u"}
    found = client.post("/search", json={"query": "tea", "filter": {'a"b': "x"}}).json()
    assert [result["id"] for result in found["results"]] == ["odd"]
    boosted = client.post("/search", json={"query": "green tea", "k": 1, "boosts": [["h\\i", "u", 5.0]]}).json()
    assert boosted["results"][0]["id"] == "odd"
    assert json.loads(json.dumps(boosted))  # finite scores: plain JSON
