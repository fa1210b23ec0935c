"""Hostile values in a search or a build, through the library and the CLI: weights beyond the one bound,
filter and boost values beyond 64 bits, oversized or deeply nested filters, an nprobe FAISS cannot
take, metadata keys that need quoting. Each is refused with a message, or works; none is a traceback."""

from __future__ import annotations

import json
import math
import re

import faiss
import numpy as np
import pytest

from dualsearch.cli import main
from dualsearch.corpora.sources import read_corpus
from dualsearch.defaults import MAX_NPROBE
from dualsearch.errors import IndexCorruptError, InvalidInputError, SearchFailedError
from dualsearch.index import ann
from dualsearch.index.config import IndexConfig
from dualsearch.index.store import json_path
from dualsearch.ranking.boosts import check_boosts, parse_boost
from dualsearch.ranking.filters import MAX_FILTER_CONDITIONS, filter_condition
from dualsearch.ranking.settings import SearchSettings
from dualsearch.ranking.weights import MAX_WEIGHT
from dualsearch.read.searcher import Searcher, SearchResult
from dualsearch.requests.search import SearchRequest, search_record
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import build_index
from tests.helpers import edit_manifest, make_legacy

ODD_KEYS = ['a"b', "h\\i", "p.q", "a[0]", "$", "it's", "tab\tx", "nl\nx", "c\x01d", "x\u2028y", "é ü"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile-values") / "corpus.jsonl"
    rows = [
        {"_id": "tea", "text": "green tea leaves", "topic": "tea", "n": 2**63 - 1, "views": 2**63 - 1},
        {"_id": "coffee", "text": "roasted coffee beans", "topic": "coffee", "n": -(2**63), "views": 0},
        {"_id": "odd", "text": "odd keys document", **{key: "yes" for key in ODD_KEYS}},
        {"_id": "wide", "text": "a document with many fields", **{f"f{i}": 1 for i in range(1500)}},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def index_dir(corpus, tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("hostile-values-index") / "index"
    build_index(read_corpus(corpus), index_dir, FakeEncoder(), IndexConfig(factory="Flat", filter_fields=ODD_KEYS))
    return index_dir


@pytest.fixture(scope="module")
def searcher(index_dir):
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        yield searcher


# ---- M4: one bound on every weight ----

TOO_LARGE = [1e39, 1e300, 3e38, -1e300, MAX_WEIGHT * 1.5]


@pytest.mark.parametrize("weight", TOO_LARGE)
def test_m4_boost_weights_beyond_the_bound_are_refused_in_every_form(weight):
    bound = re.escape(f"a boost's weight must be a number between -{MAX_WEIGHT:,.0f} and {MAX_WEIGHT:,.0f}")
    with pytest.raises(InvalidInputError, match=bound):
        check_boosts([("topic", "tea", weight)])
    with pytest.raises(InvalidInputError, match=bound):
        parse_boost(f"topic=tea:{weight!r}")
    with pytest.raises(InvalidInputError, match=bound):
        SearchRequest.checked("tea", boosts=[["topic", "tea", weight]])
    assert check_boosts([("topic", "tea", math.copysign(MAX_WEIGHT, weight))])  # the bound itself is fine


@pytest.mark.parametrize("weight", [1e308, 1e39, MAX_WEIGHT * 1.5])
def test_m4_a_prior_weight_beyond_the_bound_is_refused(weight):
    bound = f"prior_weight must be a number between 0 and {MAX_WEIGHT:,.0f}"
    with pytest.raises(InvalidInputError, match=bound):
        SearchSettings(prior_field="views", prior_weight=weight)
    with pytest.raises(InvalidInputError, match=bound):
        SearchRequest.checked("tea", prior_weight=weight)  # refused before any index is opened


@pytest.mark.parametrize("weight", [1.5, -0.1, float("nan"), 1e308])
def test_m4_a_dense_weight_outside_zero_to_one_is_refused_with_the_request(weight):
    with pytest.raises(InvalidInputError, match=r"dense_weight must be a number between 0 and 1,"):
        SearchRequest.checked("tea", dense_weight=weight)


def test_m4_the_python_api_refuses_huge_weights(searcher):
    with pytest.raises(InvalidInputError, match="a boost's weight must be a number between"):
        searcher.search("tea", boosts=(("topic", "tea", 1e39),))
    with pytest.raises(InvalidInputError, match="a boost's weight must be a number between"):
        searcher.search("tea", boosts=(("topic", "tea", 3e38), ("topic", "tea", 3e38)))
    with pytest.raises(InvalidInputError, match="prior_weight must be a number between"):
        searcher.search("tea", prior_field="views", prior_weight=1e308)


@pytest.mark.parametrize(
    "options",
    [["--boost", "topic=tea:1e300"], ["--prior-field", "n", "--prior-weight", "1e308"], ["--boost", "topic=tea:1e39"]],
)
def test_m4_index_refuses_huge_weights_before_reading_anything(corpus, tmp_path, capsys, options):
    out = tmp_path / "refused"
    assert main(["index", str(corpus), "--out", str(out), *options]) == 1
    error = capsys.readouterr().err
    assert error.startswith("dualsearch: error: ") and "must be a number between" in error
    assert error.count("\n") == 1 and not out.exists()


def test_m4_a_manifest_recording_a_huge_weight_is_refused_naming_it(corpus, tmp_path):
    index_dir = tmp_path / "index"
    build_index(read_corpus(corpus), index_dir, FakeEncoder(), IndexConfig(factory="Flat"))
    make_legacy(index_dir)  # the manifest's checksum is not verified: an edit that got through
    edit_manifest(index_dir, search={**SearchSettings().__dict__, "boosts": [["topic", "tea", 1e300]]})
    with pytest.raises(
        IndexCorruptError, match=r"manifest.json is damaged or edited: search: a boost's weight must be"
    ):
        Searcher.open(index_dir, encoder=FakeEncoder())


def test_m4_no_score_reaches_json_as_infinity_or_nan(searcher):
    request = SearchRequest.checked("tea")
    found = type("Found", (), {"results": [[SearchResult(1, "tea", float("inf"), "", "text")]]})
    found.explanations, found.nprobe, found.seconds = None, 0, 0.0
    with pytest.raises(SearchFailedError, match="score of 'tea' is inf"):
        search_record(searcher, request, found)


def test_m4_the_largest_weights_allowed_keep_every_score_finite(searcher):
    boosts = [("topic", "tea", MAX_WEIGHT)] * 50 + [("n", 2**63 - 1, MAX_WEIGHT)]
    results = searcher.search("tea", k=4, boosts=boosts, prior_field="views", prior_weight=MAX_WEIGHT)
    assert results[0].doc_id == "tea" and all(math.isfinite(r.score) for r in results)


# ---- L1 (c, d, e): filter and boost values, sizes and nesting ----

BEYOND_INT64 = [10**23, 2**63, -(2**63) - 1]


@pytest.mark.parametrize("value", BEYOND_INT64)
def test_l1c_filter_and_boost_values_beyond_64_bits_are_refused(searcher, value):
    for spec in ({"n": {"gte": value}}, {"n": value}, {"n": [1, value]}):
        with pytest.raises(InvalidInputError, match="an integer beyond 64 bits"):
            SearchRequest.checked("tea", filter=spec)
        with pytest.raises(InvalidInputError, match="an integer beyond 64 bits"):
            searcher.search("tea", filter=spec)
    with pytest.raises(InvalidInputError, match="an integer beyond 64 bits"):
        SearchRequest.checked("tea", filter=f"n>={value}")
    with pytest.raises(InvalidInputError, match="an integer beyond 64 bits"):
        SearchRequest.checked("tea", boosts=[f"n={value}:1"])
    with pytest.raises(InvalidInputError, match="an integer beyond 64 bits"):
        searcher.search("tea", boosts=(("n", value, 1.0),))


def test_l1c_the_64_bit_limits_themselves_filter_and_boost(searcher):
    assert [r.doc_id for r in searcher.search("tea", filter={"n": {"gte": 2**63 - 1}})] == ["tea"]
    assert [r.doc_id for r in searcher.search("tea", filter={"n": -(2**63)})] == ["coffee"]
    assert searcher.search("coffee", k=1, boosts=(("n", 2**63 - 1, 5.0),))[0].doc_id == "tea"


def test_l1c_the_cli_refuses_a_filter_or_boost_beyond_64_bits_in_one_line(index_dir, capsys):
    for option in (["--filter", "topic>=100000000000000000000000"], ["--boost", "n=111111111111111111111111111111:1"]):
        assert main(["search", str(index_dir), "tea", *option]) == 1
        error = capsys.readouterr().err
        assert error.startswith("dualsearch: error: ") and "beyond 64 bits" in error and error.count("\n") == 1


def test_l1d_a_filter_of_more_conditions_than_the_cap_is_refused_with_a_clear_message(searcher):
    many = {f"f{i}": 1 for i in range(1500)}
    with pytest.raises(InvalidInputError, match=f"1,500 conditions; at most {MAX_FILTER_CONDITIONS}"):
        SearchRequest.checked("tea", filter=many)
    with pytest.raises(InvalidInputError, match=f"at most {MAX_FILTER_CONDITIONS}"):
        searcher.search("tea", filter=many)  # the document has every field: SQLite would have refused the SQL
    ranges = {f"f{i}": {"gte": 0, "lte": 2} for i in range(MAX_FILTER_CONDITIONS // 2 + 1)}
    with pytest.raises(InvalidInputError, match=f"at most {MAX_FILTER_CONDITIONS}"):
        filter_condition(ranges)
    allowed = {f"f{i}": 1 for i in range(MAX_FILTER_CONDITIONS)}
    assert [r.doc_id for r in searcher.search("tea", filter=allowed)] == ["wide"]


def test_l1d_a_membership_list_longer_than_the_cap_is_refused():
    with pytest.raises(InvalidInputError, match="comparing with 40,000 values; at most"):
        filter_condition({"n": list(range(40_000))})


@pytest.mark.parametrize("depth", [50, 30_000])
def test_l1e_a_deeply_nested_json_filter_is_refused(index_dir, capsys, depth):
    deep = '{"a": ' * depth + "1" + "}" * depth
    with pytest.raises(InvalidInputError, match="nested deeper than" if depth > 100 else "range operators"):
        SearchRequest.checked("tea", filter=deep)
    assert main(["search", str(index_dir), "tea", "--filter", deep]) == 1
    error = capsys.readouterr().err
    assert error.startswith("dualsearch: error: ") and error.count("\n") == 1


def test_l1_filter_values_and_fields_with_lone_surrogates_are_refused(searcher):
    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        searcher.search("tea", filter={"topic": "te\ud800"})
    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        searcher.search("tea", filter={"to\ud800pic": "tea"})


# ---- L9: metadata keys that need quoting in SQLite's JSON paths ----


@pytest.mark.parametrize("key", ODD_KEYS)
def test_l9_a_metadata_key_of_any_characters_can_be_filtered_and_boosted_on(searcher, key):
    assert [r.doc_id for r in searcher.search("tea", filter={key: "yes"})] == ["odd"]
    assert searcher.search("tea", k=1, boosts=((key, "yes", 5.0),))[0].doc_id == "odd"
    assert searcher.store.field_values(key).count("yes") == 1


def test_l9_the_json_path_keeps_the_field_apart_from_path_syntax():
    import sqlite3

    connection = sqlite3.connect(":memory:")
    for key in [*ODD_KEYS, 'q"[x', 'a"b.c', "\\", '"', 'x\\"y']:
        document = json.dumps({key: 7, "other": 1}, ensure_ascii=False)
        try:
            path = json_path(key)
        except InvalidInputError as refused:  # only where this SQLite has no path for it
            assert '"' in key and ("." in key or "[" in key), refused
            continue
        assert connection.execute("SELECT json_extract(?, ?)", (document, path)).fetchone() == (7,), key


# ---- L14: one bound on nprobe ----


def hnsw_index():
    vectors = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
    plan = ann.plan_index("HNSW16", len(vectors))
    index = ann.train_index(plan, 8, vectors)
    ann.add_vectors(index, vectors, np.arange(len(vectors)))
    return index, vectors


def test_l14_an_nprobe_beyond_the_bound_is_refused_not_an_overflow():
    index, vectors = hnsw_index()
    with pytest.raises(InvalidInputError, match=f"nprobe must be a whole number between 1 and {MAX_NPROBE:,}"):
        ann.search_vectors(index, vectors[:1], 3, 3_000_000_000)
    assert (ann.search_vectors(index, vectors[:1], 3, MAX_NPROBE)[1] >= 0).sum() == 3
    with pytest.raises(InvalidInputError, match="nprobe must be a whole number between"):
        SearchRequest.checked("tea", nprobe=3_000_000_000)
    with pytest.raises(InvalidInputError, match="nprobe must be a whole number, got 1000"):
        SearchRequest.checked("tea", nprobe=10**400)  # beyond any float: an OverflowError before
    assert isinstance(faiss.SearchParametersHNSW(efSearch=MAX_NPROBE), faiss.SearchParametersHNSW)


@pytest.mark.parametrize("command", ["search", "evaluate"])
def test_l14_the_cli_refuses_an_nprobe_beyond_the_bound(index_dir, capsys, command):
    argv = [command, str(index_dir), "tea"] if command == "search" else [command, str(index_dir), "--queries", "x"]
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--nprobe", "3000000000"])
    assert exited.value.code == 2
    assert f"between 1 and {MAX_NPROBE:,}" in capsys.readouterr().err
