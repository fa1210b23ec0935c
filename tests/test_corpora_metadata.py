"""What a document's metadata may hold, one rule for every reader and the service: JSON scalars (valid
text, finite numbers, integers within 64 bits), lists and objects of them nested a bounded depth.
Hostile records are refused naming their file and line (or record), never with a traceback."""

from __future__ import annotations

import json

import pytest

from dualsearch.corpora.metadata import MAX_INTEGER, MAX_NESTING, checked_metadata, parse_json
from dualsearch.corpora.records import FieldNames, to_document, validated_documents
from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import CorpusError

HUGE_INTEGER = "9" * 5000  # beyond the 4,300 digits Python converts
DEEP = "[" * 100_000 + "]" * 100_000  # beyond any recursion limit


def write_lines(path, *lines: str):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"_id": "a", "text": "x", "tags": ' + DEEP + "}", r"c\.jsonl:2: invalid JSON \(nested deeper than"),
        ('{"_id": "a", "text": "x", "metadata": {"m": ' + DEEP + "}}", r"c\.jsonl:2: invalid JSON \(nested deeper"),
        ('{"_id": "a", "text": "x", "views": ' + HUGE_INTEGER + "}", r"c\.jsonl:2: invalid JSON \(an integer of 5,000"),
        ('{"_id": ' + HUGE_INTEGER + ', "text": "x"}', r"c\.jsonl:2: invalid JSON \(an integer of 5,000 digits"),
    ],
)
def test_l1f_a_jsonl_corpus_with_deep_nesting_or_huge_integers_names_file_and_line(tmp_path, line, message):
    path = write_lines(tmp_path / "c.jsonl", '{"_id": "ok", "text": "fine"}', line)
    with pytest.raises(CorpusError, match=message):
        list(read_corpus(path))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"_id": "a", "text": "x", "n": MAX_INTEGER + 1}, r"metadata field 'n' holds an integer beyond 64 bits"),
        ({"_id": "a", "text": "x", "n": -MAX_INTEGER - 2}, r"metadata field 'n' holds an integer beyond 64 bits"),
        ({"_id": "a", "text": "x", "n": [1, {"m": 10**30}]}, r"metadata field 'n' holds an integer beyond 64 bits"),
        ({"_id": 10**30, "text": "x"}, r"an integer document id must fit in 64 bits"),
    ],
)
def test_l1b_integers_beyond_64_bits_are_refused_in_metadata_and_ids(tmp_path, record, message):
    with pytest.raises(CorpusError, match=r"c\.jsonl:1: .*" + message):
        list(read_corpus(write_lines(tmp_path / "c.jsonl", json.dumps(record))))


def test_l1b_an_integer_of_more_digits_than_python_converts_is_refused_not_a_value_error():
    record = {"_id": int("1" * 4300) * 10**800, "text": "x"}  # built without a string conversion
    with pytest.raises(CorpusError, match="record 1: an integer document id must fit in 64 bits"):
        to_document(record, FieldNames(), "record 1")
    record = {"_id": "a", "text": "x", "n": int("1" * 4300) * 10**800}
    with pytest.raises(CorpusError, match="record 1: document a: metadata field 'n' holds an integer beyond 64 bits"):
        to_document(record, FieldNames(), "record 1")


def test_l1a_metadata_nested_deeper_than_the_rule_is_refused_naming_the_record():
    value: object = "leaf"
    for _ in range(MAX_NESTING + 1):
        value = [value]
    with pytest.raises(
        CorpusError, match=rf"record 1: document a: metadata field 'm' is nested deeper than {MAX_NESTING}"
    ):
        to_document({"_id": "a", "text": "x", "m": value}, FieldNames(), "record 1")
    fits = value[0]
    assert to_document({"_id": "a", "text": "x", "m": fits}, FieldNames(), "record 1").metadata == {"m": fits}


def test_l1a_a_record_nested_beyond_the_recursion_limit_is_refused_not_a_recursion_error():
    value: dict = {}
    for _ in range(5000):
        value = {"m": value}
    with pytest.raises(CorpusError, match="record 1: document a: metadata field 'deep' is nested deeper than"):
        list(validated_documents([("record 1", {"_id": "a", "text": "x", "deep": value})], FieldNames()))


@pytest.mark.parametrize("metadata", [[1, 2], "text", 3, True])
def test_l8_a_metadata_field_that_is_not_an_object_is_refused_naming_the_record(tmp_path, metadata):
    record = {"_id": "mnd", "text": "x", "metadata": metadata}
    with pytest.raises(CorpusError, match=r"c\.jsonl:1: document mnd: 'metadata' must be an object of fields, got"):
        list(read_corpus(write_lines(tmp_path / "c.jsonl", json.dumps(record))))


def test_l8_a_metadata_object_is_merged_and_null_means_none():
    merged = to_document({"_id": "a", "text": "x", "metadata": {"m": 1}, "lang": "en"}, FieldNames(), "r")
    assert merged.metadata == {"m": 1, "lang": "en"}
    assert to_document({"_id": "a", "text": "x", "metadata": None}, FieldNames(), "r").metadata == {}


def test_the_rule_keeps_what_json_holds_and_coerces_other_objects_to_text():
    import datetime

    metadata = {"s": "é", "n": -(2**63), "f": 1.5, "b": False, "z": None, "l": [1, "a", {"k": [True]}]}
    assert checked_metadata(metadata, "r") == metadata
    assert checked_metadata({"day": datetime.date(2024, 1, 2)}, "r") == {"day": "2024-01-02"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (DEEP, "nested deeper than"),
        ('{"a": ' + HUGE_INTEGER + "}", "an integer of 5,000 digits"),
        ('{"a": ', "Expecting value"),
    ],
)
def test_parse_json_fails_only_with_a_json_decode_error(text, problem):
    with pytest.raises(json.JSONDecodeError, match=problem):
        parse_json(text)


def test_parse_json_reads_what_json_loads_reads():
    text = '{"a": [1, 2.5, "x", null, true, {"b": ' + "[" * 50 + "]" * 50 + "}], " + '"n": ' + "7" * 4000 + "}"
    assert parse_json(text) == json.loads(text)
