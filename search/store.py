"""The document store: row id -> document id, title, text, metadata and content hash, in SQLite.

One store file belongs to one immutable index version. Writers fill it while building the version;
readers open it read-only and ``immutable`` so SQLite takes no locks and never writes a journal.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualsearch.corpora.document import Document

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    row_id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class StoredDocument:
    row_id: int
    doc_id: str
    title: str
    text: str
    metadata: dict[str, Any]
    content_hash: str


class DocumentStoreWriter:
    """Append documents under row ids while a version is being built."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path)
        self.connection.execute("PRAGMA journal_mode=OFF")  # the whole version is discarded on failure
        self.connection.execute("PRAGMA synchronous=OFF")  # we fsync the finished file ourselves
        self.connection.execute(_SCHEMA)

    def add(self, row_ids: Iterable[int], documents: Iterable[Document]) -> None:
        rows = (
            (row_id, d.id, d.title, d.text, json.dumps(d.metadata, ensure_ascii=False), d.content_hash())
            for row_id, d in zip(row_ids, documents, strict=True)
        )
        self.connection.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)", rows)

    def close(self) -> None:
        self.connection.commit()
        self.connection.close()


class DocumentStoreReader:
    """Read-only, thread-safe look-ups by row id or document id."""

    def __init__(self, path: Path) -> None:
        uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
        self.connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()  # one connection shared by the demo's worker threads

    def fetch(self, row_ids: Iterable[int]) -> dict[int, StoredDocument]:
        """Documents for the given row ids (missing ids are absent from the result)."""
        row_ids = [int(row_id) for row_id in row_ids]
        if not row_ids:
            return {}
        marks = ",".join("?" * len(row_ids))
        with self._lock:
            rows = self.connection.execute(f"SELECT * FROM documents WHERE row_id IN ({marks})", row_ids).fetchall()
        return {row[0]: _stored(row) for row in rows}

    def lookup(self, doc_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
        """Map each stored document id among ``doc_ids`` to (row id, content hash)."""
        doc_ids = list(doc_ids)
        found: dict[str, tuple[int, str]] = {}
        for start in range(0, len(doc_ids), 500):  # SQLite caps the number of bound parameters
            part = doc_ids[start : start + 500]
            query = f"SELECT doc_id, row_id, content_hash FROM documents WHERE doc_id IN ({','.join('?' * len(part))})"
            with self._lock:
                found.update(
                    {doc_id: (row_id, digest) for doc_id, row_id, digest in self.connection.execute(query, part)}
                )
        return found

    def iter_documents(self, page: int = 1000) -> Iterator[Document]:
        """Every stored document, in row order, one page in memory at a time."""
        last = -1
        while True:
            with self._lock:
                rows = self.connection.execute(
                    "SELECT * FROM documents WHERE row_id > ? ORDER BY row_id LIMIT ?", (last, page)
                ).fetchall()
            if not rows:
                return
            for row in rows:
                stored = _stored(row)
                yield Document(stored.doc_id, stored.title, stored.text, stored.metadata)
            last = rows[-1][0]

    def close(self) -> None:
        self.connection.close()


def _stored(row: tuple) -> StoredDocument:
    row_id, doc_id, title, text, metadata, content_hash = row
    return StoredDocument(row_id, doc_id, title, text, json.loads(metadata), content_hash)
