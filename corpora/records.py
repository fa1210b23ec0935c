"""Turn raw records (dicts from any file format) into validated :class:`Document` objects.

Every reader yields ``(location, record)`` pairs, where ``location`` names the file and the line or
record ("corpus.jsonl:17"). This module owns the checks, so every format refuses bad input the same
way: a missing or empty id, empty text and a duplicate id all raise :class:`CorpusError` naming the
location.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dualsearch.corpora.counts import count_problem, count_rule
from dualsearch.corpora.document import Document
from dualsearch.corpora.text import is_blank, text_problem
from dualsearch.errors import CorpusError

RawRecords = Iterable[tuple[str, Mapping[str, Any]]]
InvalidHandler = Callable[[CorpusError], None]


@dataclass(frozen=True)
class FieldNames:
    """Which record fields hold the id, title and text, and which metadata fields are counts.

    ``id=None`` accepts BEIR's ``_id`` and falls back to ``id``. Fields other than these three are
    kept as metadata (a ``metadata`` field holding a mapping is merged in). A ``counts`` field (an
    index's prior field) holds a non-negative number or nothing (:mod:`dualsearch.corpora.counts`).
    """

    id: str | None = None
    title: str = "title"
    text: str = "text"
    counts: tuple[str, ...] = ()

    def with_count(self, field: str | None) -> FieldNames:
        """These fields, with ``field`` (if any) checked as a count too."""
        if not field or field in self.counts:
            return self
        return dataclasses.replace(self, counts=(*self.counts, field))

    def __post_init__(self) -> None:
        for name in (self.title, self.text) + ((self.id,) if self.id is not None else ()):
            if not isinstance(name, str) or not name:
                raise CorpusError(f"field names must be non-empty strings, got {name!r}")


def _pick_id(record: Mapping[str, Any], fields: FieldNames) -> tuple[str | None, Any]:
    if fields.id is not None:
        return fields.id, record.get(fields.id)
    for candidate in ("_id", "id"):
        if candidate in record:
            return candidate, record[candidate]
    return None, None


def to_document(record: Mapping[str, Any], fields: FieldNames, location: str) -> Document:
    """Validate one raw record and build its :class:`Document`.

    Values are never coerced: an id is a string or an integer (not a boolean), the title a string
    or absent, the text a non-blank string; text holding a lone surrogate (which no tokenizer or
    database can encode) and metadata numbers JSON cannot hold (NaN, Infinity) are refused.

    Example:
        >>> to_document({"_id": "a", "text": "hello"}, FieldNames(), "x.jsonl:1").id
        'a'
    """
    if not isinstance(record, Mapping):
        raise CorpusError(f"{location}: expected an object with fields, got {type(record).__name__}")
    id_key, doc_id = _document_id(record, fields, location)
    text = record.get(fields.text)
    if text is None or (isinstance(text, str) and is_blank(text)):
        raise CorpusError(f"{location}: document {doc_id} has no text (field '{fields.text}')")
    _check_text(text, f"{location}: document {doc_id}: text (field '{fields.text}')")
    title = record.get(fields.title)
    title = "" if title is None else title
    _check_text(title, f"{location}: document {doc_id}: title (field '{fields.title}')", blank_ok=True)
    metadata = dict(record["metadata"]) if isinstance(record.get("metadata"), Mapping) else {}
    used = {id_key, fields.title, fields.text, "metadata"}
    metadata.update({key: value for key, value in record.items() if key not in used and value is not None})
    metadata = _json_safe(metadata, f"{location}: document {doc_id}")
    document = Document(id=doc_id, title=title, text=text, metadata=metadata)
    check_counts(document, fields.counts, location)
    return document


def check_counts(document: Document, counts: Iterable[str], location: str) -> None:
    """Refuse a document whose count field (an index's prior field) holds anything but a count."""
    for field in counts:
        problem = count_problem(document.metadata.get(field))
        if problem is not None:
            raise CorpusError(f"{location}: document {document.id}: {count_rule(field)}; {problem}")


def _document_id(record: Mapping[str, Any], fields: FieldNames, location: str) -> tuple[str | None, str]:
    """(the field holding the id, the id as a string)."""
    id_key, raw_id = _pick_id(record, fields)
    wanted_id = fields.id or "_id' or 'id"
    if isinstance(raw_id, str):
        _check_text(raw_id, f"{location}: document id {raw_id!r}", blank_ok=True)
    if raw_id is None or (isinstance(raw_id, str) and is_blank(raw_id)):
        raise CorpusError(f"{location}: missing or empty document id (field '{wanted_id}')")
    if isinstance(raw_id, (bool, float)) or not isinstance(raw_id, (str, int)):
        raise CorpusError(f"{location}: document id must be a string or an integer, got {raw_id!r}")
    return id_key, str(raw_id)


def _check_text(value: Any, what: str, blank_ok: bool = False) -> None:
    """Refuse a value that is not a string, or one that no encoder can take."""
    if not isinstance(value, str):
        raise CorpusError(f"{what} must be a string, got {type(value).__name__} {value!r:.40}")
    problem = text_problem(value)
    if problem is not None and not (blank_ok and problem == "is empty"):
        raise CorpusError(f"{what} {problem}")


def _json_safe(value: Any, where: str) -> Any:
    """Metadata goes into JSON in the document store and in ``search --json``: refuse what JSON
    cannot hold faithfully (NaN, Infinity, lone surrogates); coerce other objects to strings."""
    if isinstance(value, Mapping):
        return {_json_safe(str(key), where): _json_safe(item, where) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item, where) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise CorpusError(f"{where}: metadata holds {value}, which JSON cannot represent")
    if value is None or isinstance(value, (int, float, bool)):
        return value
    text = value if isinstance(value, str) else str(value)
    _check_text(text, f"{where}: metadata {text!r:.40}", blank_ok=True)
    return text


def validated_documents(
    records: RawRecords, fields: FieldNames, on_invalid: InvalidHandler | None = None
) -> Iterator[Document]:
    """Convert and check a stream of raw records, refusing duplicates.

    Args:
        records: ``(location, record)`` pairs from a reader.
        fields: Which fields hold id, title and text.
        on_invalid: If given, invalid records are passed to it and skipped; otherwise the first one
            raises :class:`CorpusError`.

    Memory grows with the number of distinct ids (a set of strings), not with the documents.
    """
    first_seen: dict[str, str] = {}
    for location, record in records:
        try:
            document = to_document(record, fields, location)
            if document.id in first_seen:
                raise CorpusError(
                    f"{location}: duplicate document id {document.id!r} (first seen at {first_seen[document.id]})"
                )
        except CorpusError as error:
            if on_invalid is None:
                raise
            on_invalid(error)
            continue
        first_seen[document.id] = location
        yield document
