"""Corpus readers: every format yields the same Documents, and bad input names file and line."""

from __future__ import annotations

import json

import pytest

from dualsearch.corpora.document import Document
from dualsearch.corpora.records import FieldNames
from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import CorpusError, CorpusNotFoundError, DualsearchError

ROWS = [
    {"_id": "a", "title": "Alpha", "text": "first document", "lang": "en"},
    {"_id": "b", "title": "", "text": "second document", "lang": "fr"},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_jsonl_yields_documents_with_extra_fields_as_metadata(tmp_path):
    docs = list(read_corpus(write_jsonl(tmp_path / "c.jsonl", ROWS)))
    assert docs == [
        Document("a", "Alpha", "first document", {"lang": "en"}),
        Document("b", "", "second document", {"lang": "fr"}),
    ]
    assert docs[0].encoding_text() == "Alpha first document"
    assert docs[1].encoding_text() == "second document"


def test_custom_field_names(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"key": 7, "heading": "H", "body": "words"}])
    [doc] = read_corpus(path, FieldNames(id="key", title="heading", text="body"))
    assert (doc.id, doc.title, doc.text) == ("7", "H", "words")


def test_csv_tsv_and_parquet_agree_with_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    header = "_id,title,text,lang\n"
    (tmp_path / "c.csv").write_text(header + 'a,Alpha,first document,en\nb,,"second document",fr\n', encoding="utf-8")
    (tmp_path / "c.tsv").write_text(
        header.replace(",", "\t") + "a\tAlpha\tfirst document\ten\nb\t\tsecond document\tfr\n"
    )
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "c.parquet")
    expected = list(read_corpus(write_jsonl(tmp_path / "c.jsonl", ROWS)))
    for name in ("c.csv", "c.tsv", "c.parquet"):
        assert list(read_corpus(tmp_path / name)) == expected, name


def test_saved_hf_dataset(tmp_path):
    import datasets

    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "ds"))
    assert [d.id for d in read_corpus(tmp_path / "ds")] == ["a", "b"]


def test_beir_directory_and_builtin_tiny_corpus():
    docs = list(read_corpus("tiny"))
    assert len(docs) == len({d.id for d in docs}) >= 20
    assert all(d.text for d in docs)


def test_reading_is_lazy(tmp_path):
    """A bad record far down the file is only met when reached: the reader streams."""
    rows = ROWS + [{"_id": "c", "text": ""}]
    documents = read_corpus(write_jsonl(tmp_path / "c.jsonl", rows))
    assert next(documents).id == "a"
    assert next(documents).id == "b"
    with pytest.raises(CorpusError):
        next(documents)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"_id": "a", "text": "ok"}\n{"_id": "b", "text": \n', "c.jsonl:2: invalid JSON"),
        (b'{"_id": "a", "text": "ok"}\n{"text": "no id"}\n', "c.jsonl:2: missing or empty document id"),
        (b'{"_id": "", "text": "empty id"}\n', "c.jsonl:1: missing or empty document id"),
        (b'{"_id": "a", "text": "   "}\n', "c.jsonl:1: document a has no text"),
        (
            b'{"_id": "a", "text": "x"}\n\n{"_id": "a", "text": "y"}\n',
            "c.jsonl:3: duplicate document id 'a' (first seen at",
        ),
        (b'{"_id": "a", "text": "caf\xe9"}\n', "c.jsonl:1: not valid UTF-8"),
        (b'["a", "list"]\n', "c.jsonl:1: expected a JSON object"),
    ],
)
def test_bad_jsonl_records_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "c.jsonl"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=message.replace("(", r"\(")) as caught:
        list(read_corpus(path))
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, DualsearchError)


def test_bad_csv_row_names_the_line(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("_id,text\na,fine\nb,\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"c\.csv:3: document b has no text"):
        list(read_corpus(path))


def test_skip_invalid_reports_each_bad_record(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(
        b'{"_id": "a", "text": "ok"}\n{"_id": "b", "text": ""}\n'
        b'{"_id": "a", "text": "again"}\n{"_id": "c", "text": "ok"}\n'
    )
    skipped = []
    assert [d.id for d in read_corpus(path, on_invalid=skipped.append)] == ["a", "c"]
    assert [str(e).split(": ")[0].rsplit(":", 1)[1] for e in skipped] == ["2", "3"]


def test_unknown_source_and_format(tmp_path):
    with pytest.raises(CorpusNotFoundError, match="corpus not found"):
        read_corpus(tmp_path / "missing.jsonl")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CorpusNotFoundError, match="cannot tell the format"):
        read_corpus(tmp_path / "notes.txt")
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(CorpusError, match="not a readable Parquet file"):
        list(read_corpus(tmp_path / "fake.parquet"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (rb'{"_id": "a", "text": "bad \ud800 text"}', r"c\.jsonl:2: document a: text .* lone surrogate"),
        (rb'{"_id": "\udc80", "text": "fine text"}', r"c\.jsonl:2: document id '\\udc80' is not valid Unicode"),
        (rb'{"_id": "a", "title": "\udfff", "text": "fine"}', r"c\.jsonl:2: document a: title .* lone surrogate"),
        (rb'{"_id": "a", "text": "fine", "tag": "\ud800"}', r"c\.jsonl:2: document a: metadata .* lone surrogate"),
    ],
)
def test_lone_surrogates_are_bad_records_with_file_and_line(tmp_path, line, message):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"_id": "ok", "text": "fine"}\n' + line + b"\n")
    with pytest.raises(CorpusError, match=message):
        list(read_corpus(path))
    skipped = []
    assert [d.id for d in read_corpus(path, on_invalid=skipped.append)] == ["ok"] and len(skipped) == 1


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_metadata_json_cannot_hold_is_refused(tmp_path, constant):
    path = tmp_path / "c.jsonl"
    path.write_text('{"_id": "a", "text": "fine", "metadata": {"score": [CONSTANT]}}\n'.replace("CONSTANT", constant))
    with pytest.raises(
        CorpusError, match=r"c\.jsonl:1: document a: metadata field 'score' holds .*JSON cannot represent"
    ):
        list(read_corpus(path))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"_id": True, "text": "x"}, "document id must be a string or an integer, got True"),
        ({"_id": "a", "title": 0, "text": "x"}, r"document a: title \(field 'title'\) must be a string, got int 0"),
        ({"_id": "a", "title": ["t"], "text": "x"}, r"document a: title \(field 'title'\) must be a string, got list"),
        ({"_id": "a", "text": 42}, r"document a: text \(field 'text'\) must be a string, got int 42"),
        ({"_id": "a", "text": "\u0000\u200b\u200d"}, "document a has no text"),
        ({"_id": "\u200b", "text": "x"}, "missing or empty document id"),
    ],
)
def test_values_are_not_coerced(tmp_path, record, message):
    with pytest.raises(CorpusError, match=r"c\.jsonl:1: " + message):
        list(read_corpus(write_jsonl(tmp_path / "c.jsonl", [record])))


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ('id,title,text\nc1,T,"text one\nc2,t,x\nc3,t,y\n', 2),  # in the last column: used to merge rows
        ('id,title,text\nc0,T,fine\nc1,"T,text one\nc2,t,x\nc3,t,y\n', 3),  # in a middle one: "has no text"
    ],
)
def test_csv_quote_never_closed_names_its_line(tmp_path, content, line):
    path = tmp_path / "c.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError, match=rf"c\.csv:{line}: malformed CSV \(a quoted field .* never closed\)"):
        list(read_corpus(path))


def test_csv_quoted_newlines_still_work(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('id,title,text\nc1,T,"two\nlines"\nc2,t,x\n', encoding="utf-8")
    assert [(d.id, d.text) for d in read_corpus(path)] == [("c1", "two\nlines"), ("c2", "x")]
