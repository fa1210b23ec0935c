"""The document store: document row -> id, title, text, metadata, content hash and passages, in SQLite.

Document rows are 0..n-1 in the order documents were written. A document's passages are the
vector rows ``first_row .. first_row + len(passages) - 1`` (contiguous, in order), and ``passages``
holds their character spans in the text as JSON. One store file belongs to one immutable index
version. Writers fill it while building the version; readers open it read-only and ``immutable``
so SQLite takes no locks and never writes a journal. Metadata fields declared for filtering get
an SQLite expression index (:mod:`dualsearch.ranking.filters` queries them).
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dualsearch.corpora.document import Document
from dualsearch.errors import InvalidInputError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_row INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    first_row INTEGER NOT NULL,
    passages TEXT NOT NULL
)
"""


Span = tuple[int, int]


@dataclass(frozen=True)
class StoredDocument:
    doc_row: int
    doc_id: str
    title: str
    text: str
    metadata: dict[str, Any]
    content_hash: str
    first_row: int  # vector row of its first passage
    passages: list[Span]  # character spans of its passages in ``text``


@dataclass(frozen=True)
class Located:
    """Where a stored document is, and whether it changed: what re-indexing needs to reuse it."""

    doc_row: int
    content_hash: str
    first_row: int
    passages: list[Span]


@functools.lru_cache(maxsize=4096)
def json_path(field: str) -> str:
    """The SQLite JSON path of a top-level metadata field, whatever characters its name holds.

    SQLite matches a path's label against the key as the stored JSON spells it (``json.dumps``: ``\\``
    for a backslash, ``\\"`` for a quote, ``\\u0001`` for a control character), and a quoted label ends
    at the first ``"``. So the label is the key's JSON spelling, quoted unless it holds a ``"`` (then
    unquoted). Later releases (the JSONB rewrite of 3.45) decode escapes on both sides and take a quote
    as ``\\u0022`` in a quoted label; each form is tried on a one-key document and the first this SQLite
    finds is kept (cached per name). A name holding a ``"`` and a ``.`` or ``[`` has no path in the
    older releases: :class:`InvalidInputError` says so.

    Example:
        >>> json_path("year"), json_path("p.q")
        ('$."year"', '$."p.q"')
    """
    spelled = json.dumps(field, ensure_ascii=False)[1:-1]  # as DocumentStoreWriter stores the key
    if '"' in field:
        forms = ["$." + spelled, '$."' + spelled.replace('\\"', "\\u0022") + '"']
    else:
        forms = ['$."' + spelled + '"']
    probe = json.dumps({field: 1}, ensure_ascii=False)
    with closing(sqlite3.connect(":memory:")) as connection:
        for path in forms:
            try:
                if connection.execute("SELECT json_extract(?, ?)", (probe, path)).fetchone() == (1,):
                    return path
            except sqlite3.OperationalError:  # a form this release does not parse
                continue
    raise InvalidInputError(
        f"the metadata field {field!r} cannot be filtered or boosted on: SQLite {sqlite3.sqlite_version} "
        "has no JSON path for a name holding both '\"' and '.' or '['"
    )


class DocumentStoreWriter:
    """Append documents under row ids while a version is being built."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path)
        self.connection.execute("PRAGMA journal_mode=OFF")  # the whole version is discarded on failure
        self.connection.execute("PRAGMA synchronous=OFF")  # we fsync the finished file ourselves
        self.connection.execute(_SCHEMA)

    def add(
        self,
        doc_rows: Iterable[int],
        documents: Iterable[Document],
        first_rows: Iterable[int],
        passages: Iterable[list[Span]],
    ) -> None:
        rows = (
            (
                row,
                d.id,
                d.title,
                d.text,
                json.dumps(d.metadata, ensure_ascii=False),
                d.content_hash(),
                first,
                json.dumps(spans),
            )
            for row, d, first, spans in zip(doc_rows, documents, first_rows, passages, strict=True)
        )
        self.connection.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def index_fields(self, fields: Iterable[str]) -> None:
        """Index metadata ``fields`` for fast filtering."""
        for number, field in enumerate(fields):
            path = json_path(field).replace("'", "''")
            self.connection.execute(f"CREATE INDEX filter_{number} ON documents(json_extract(metadata, '{path}'))")

    def close(self) -> None:
        self.connection.commit()
        self.connection.close()


class DocumentStoreReader:
    """Read-only, thread-safe look-ups by row id or document id."""

    def __init__(self, path: Path) -> None:
        uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
        self.connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()  # one connection shared by the demo's worker threads
        self._owners = 1  # versions reading this (immutable) store: the last one to close it closes it

    def share(self) -> DocumentStoreReader:
        """This reader for one more owner (a newer version holding the same segment); every owner calls
        :meth:`close` once."""
        with self._lock:
            self._owners += 1
        return self

    def fetch(self, doc_rows: Iterable[int]) -> dict[int, StoredDocument]:
        """Documents for the given document rows (missing rows are absent from the result)."""
        doc_rows = [int(row) for row in doc_rows]
        found: dict[int, StoredDocument] = {}
        for start in range(0, len(doc_rows), 500):  # SQLite caps the number of bound parameters
            part = doc_rows[start : start + 500]
            query = f"SELECT * FROM documents WHERE doc_row IN ({','.join('?' * len(part))})"
            with self._lock:
                found.update({row[0]: _stored(row) for row in self.connection.execute(query, part)})
        return found

    def passage_counts(self) -> np.ndarray:
        """Passages of each document, in document-row order: (n,) int64."""
        with self._lock:
            rows = self.connection.execute("SELECT json_array_length(passages) FROM documents ORDER BY doc_row")
            return np.fromiter((count for (count,) in rows), dtype=np.int64)

    def select_rows(self, condition: str, parameters: list) -> np.ndarray:
        """Document rows whose record satisfies the SQL ``condition``, sorted: (m,) int64."""
        with self._lock:
            rows = self.connection.execute(
                f"SELECT doc_row FROM documents WHERE {condition} ORDER BY doc_row", parameters
            )
            return np.fromiter((row for (row,) in rows), dtype=np.int64)

    def field_values(self, field: str) -> list:
        """The metadata ``field`` of every document, in document-row order (None where absent)."""
        with self._lock:
            rows = self.connection.execute(
                "SELECT json_extract(metadata, ?) FROM documents ORDER BY doc_row", (json_path(field),)
            )
            return [value for (value,) in rows]

    def has_field(self, field: str) -> bool:
        """True if at least one document's metadata has ``field``."""
        query = "SELECT 1 FROM documents WHERE json_type(metadata, ?) IS NOT NULL LIMIT 1"
        with self._lock:
            return self.connection.execute(query, (json_path(field),)).fetchone() is not None

    def lookup(self, doc_ids: Iterable[str]) -> dict[str, Located]:
        """Where each stored document among ``doc_ids`` is, and its content hash."""
        doc_ids = list(doc_ids)
        found: dict[str, Located] = {}
        for start in range(0, len(doc_ids), 500):  # SQLite caps the number of bound parameters
            part = doc_ids[start : start + 500]
            query = (
                "SELECT doc_id, doc_row, content_hash, first_row, passages FROM documents "
                f"WHERE doc_id IN ({','.join('?' * len(part))})"
            )
            with self._lock:
                for doc_id, row, digest, first, spans in self.connection.execute(query, part):
                    found[doc_id] = Located(row, digest, first, [tuple(span) for span in json.loads(spans)])
        return found

    def iter_documents(self, page: int = 1000) -> Iterator[Document]:
        """Every stored document, in row order, one page in memory at a time."""
        last = -1
        while True:
            with self._lock:
                rows = self.connection.execute(
                    "SELECT * FROM documents WHERE doc_row > ? ORDER BY doc_row LIMIT ?", (last, page)
                ).fetchall()
            if not rows:
                return
            for row in rows:
                stored = _stored(row)
                yield Document(stored.doc_id, stored.title, stored.text, stored.metadata)
            last = rows[-1][0]

    def close(self) -> None:
        with self._lock:
            self._owners -= 1
            if self._owners > 0:
                return
        self.connection.close()


def _stored(row: tuple) -> StoredDocument:
    doc_row, doc_id, title, text, metadata, content_hash, first_row, passages = row
    spans = [tuple(span) for span in json.loads(passages)]
    return StoredDocument(doc_row, doc_id, title, text, json.loads(metadata), content_hash, first_row, spans)
