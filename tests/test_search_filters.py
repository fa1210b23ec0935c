"""Metadata filters: inside the search (k results when k match), and bad filters refused."""

from __future__ import annotations

import json

import pytest

from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import InvalidInputError
from dualsearch.index.config import IndexConfig
from dualsearch.ranking.filters import filter_condition, merge_filters, parse_filter_option
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import build_index

COUNT = 3000


@pytest.fixture(scope="module")
def large_index(tmp_path_factory):
    """3,000 documents in IVF lists; only 12 are in 2019, and all of them talk about something else."""
    directory = tmp_path_factory.mktemp("filters")
    rows = [
        {
            "_id": f"d{i}",
            "text": f"river delta sediment report {i}" if i % 250 else f"mountain glacier survey {i}",
            "year": 2019 if i % 250 == 0 else 2000 + i % 19,
            "lang": "en" if i % 2 else "fr",
            "date": f"2020-{1 + i % 12:02d}-01",
        }
        for i in range(COUNT)
    ]
    path = directory / "c.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    build_index(read_corpus(path), directory / "idx", FakeEncoder(dimension=32), IndexConfig(filter_fields=("year",)))
    return Searcher.open(directory / "idx", encoder=FakeEncoder(dimension=32))


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_a_filter_matching_few_documents_still_returns_k_of_them(large_index, mode):
    results = large_index.search("river delta sediment", k=10, mode=mode, filter={"year": 2019})
    if mode == "lexical":  # BM25 returns documents that contain a query word: none of the 2019 ones do
        assert results == []
        return
    assert len(results) == 10 and all(r.metadata["year"] == 2019 for r in results)


def test_membership_ranges_and_dates(large_index):
    results = large_index.search(
        "river", k=50, mode="dense", filter={"year": {"gte": 2010, "lt": 2012}, "lang": ["en"]}
    )
    assert len(results) == 50 and all(2010 <= r.metadata["year"] < 2012 and r.metadata["lang"] == "en" for r in results)
    march = large_index.search("river", k=20, filter={"date": {"gte": "2020-03-01", "lte": "2020-03-31"}})
    assert len(march) == 20 and {r.metadata["date"] for r in march} == {"2020-03-01"}


def test_a_broad_filter_goes_through_the_ann_index(large_index, monkeypatch):
    monkeypatch.setattr("dualsearch.read.searcher.EXACT_FILTER_ROWS", 10)  # force the IDSelector path
    results = large_index.search("mountain glacier", k=10, mode="dense", filter={"year": 2019})
    assert len(results) == 10 and all(r.metadata["year"] == 2019 for r in results)
    french = large_index.search("river delta", k=30, mode="dense", filter={"lang": "fr"})
    assert len(french) == 30 and all(r.metadata["lang"] == "fr" for r in french)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"colour": "red"}, "no document .* has the metadata field 'colour'"),
        ({"year": {"about": 2019}}, "range operators are gt, gte, lt, lte"),
        ({"year": []}, "an empty list matches nothing"),
        ({"year": {"gte": None}}, "is not a string, number or boolean"),
        ({}, "non-empty mapping"),
        ("year=2019", "non-empty mapping"),
    ],
)
def test_bad_filters_are_refused_with_a_clear_error(large_index, spec, message):
    with pytest.raises(InvalidInputError, match=message):
        large_index.search("river", filter=spec)


def test_command_line_conditions_parse_and_merge():
    merged = merge_filters(
        [
            parse_filter_option("year>=2010"),
            parse_filter_option("year<2020"),
            parse_filter_option("lang=en"),
            parse_filter_option('{"kind": ["a", "b"]}'),
        ]
    )
    assert merged == {"year": {"gte": 2010, "lt": 2020}, "lang": "en", "kind": ["a", "b"]}
    assert filter_condition({"flag": True})[1] == ['$."flag"', 1]
    with pytest.raises(InvalidInputError, match="expected FIELD=VALUE"):
        parse_filter_option("just-a-word")
    with pytest.raises(InvalidInputError, match="two conditions on 'lang'"):
        merge_filters([{"lang": "en"}, {"lang": "fr"}])
