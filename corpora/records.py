"""Turn raw records (dicts from any file format) into validated :class:`Document` objects.

Every reader yields ``(location, record)`` pairs, where ``location`` names the file and the line or
record ("corpus.jsonl:17"). This module owns the checks, so every format refuses bad input the same
way: a missing or empty id, empty text and a duplicate id all raise :class:`CorpusError` naming the
location.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dualsearch.corpora.document import Document
from dualsearch.errors import CorpusError

RawRecords = Iterable[tuple[str, Mapping[str, Any]]]
InvalidHandler = Callable[[CorpusError], None]


@dataclass(frozen=True)
class FieldNames:
    """Which record fields hold the id, title and text.

    ``id=None`` accepts BEIR's ``_id`` and falls back to ``id``. Fields other than these three are
    kept as metadata (a ``metadata`` field holding a mapping is merged in).
    """

    id: str | None = None
    title: str = "title"
    text: str = "text"

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

    Example:
        >>> to_document({"_id": "a", "text": "hello"}, FieldNames(), "x.jsonl:1").id
        'a'
    """
    if not isinstance(record, Mapping):
        raise CorpusError(f"{location}: expected an object with fields, got {type(record).__name__}")
    id_key, raw_id = _pick_id(record, fields)
    wanted_id = fields.id or "_id' or 'id"
    if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
        raise CorpusError(f"{location}: missing or empty document id (field '{wanted_id}')")
    if isinstance(raw_id, float) or not isinstance(raw_id, (str, int)):
        raise CorpusError(f"{location}: document id must be a string or an integer, got {raw_id!r}")
    text = record.get(fields.text)
    if not isinstance(text, str) or not text.strip():
        raise CorpusError(f"{location}: document {raw_id!s} has no text (field '{fields.text}')")
    title = record.get(fields.title) or ""
    if not isinstance(title, str):
        title = str(title)
    metadata = dict(record["metadata"]) if isinstance(record.get("metadata"), Mapping) else {}
    used = {id_key, fields.title, fields.text, "metadata"}
    metadata.update({key: value for key, value in record.items() if key not in used and value is not None})
    return Document(id=str(raw_id), title=title, text=text, metadata=_json_safe(metadata))


def _json_safe(value: Any) -> Any:
    """Metadata goes into JSON in the document store; coerce what JSON cannot hold to strings."""
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


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
