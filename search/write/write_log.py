"""The service's write-ahead log: :class:`WriteAheadLog`.

``dualsearch serve`` acknowledges a write once it is in this log, on disk (fsynced), and turns the
log into a segment at the next refresh (:mod:`dualsearch.service.writes`). So an acknowledged write
costs an append, and survives a crash of the server at any moment: at start the server replays the
records after the last one the live version holds (``Manifest.log_sequence``).

On disk: ``DIR/wal/<first sequence>.wal`` files of records, one a line::

    <crc32 of the JSON, 8 hex digits> <JSON: {"sequence": n, "operation": "add", "documents": [...]}>

Appends go to the newest file; each refresh starts a new one, and a file is removed once a published
version holds all its records. A crash mid-append leaves a torn last record, which fails its checksum
and is dropped on replay: it was never acknowledged. A process appends only to a file it created, so
a torn record is always the last of its file.

One server owns the log at a time (an ``flock`` on ``DIR/wal/.owner``, released by the kernel when
the server dies): a second server on the same index serves reads and refuses writes.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dualsearch.atomic import fsync_path
from dualsearch.corpora.document import Document
from dualsearch.errors import DualsearchError, IndexLockedError
from dualsearch.index import layout
from dualsearch.index.failpoints import failpoint

logger = logging.getLogger(__name__)
OWNER_NAME = ".owner"
SUFFIX = ".wal"


class LogOwnedError(IndexLockedError):
    """Another server takes this index's writes (it owns the write-ahead log)."""


@dataclass(frozen=True)
class LogRecord:
    """One acknowledged write: documents to add (replacing any with their ids), or ids to delete."""

    sequence: int
    operation: str  # "add" or "delete"
    documents: tuple[Document, ...] = ()
    ids: tuple[str, ...] = ()

    def line(self) -> bytes:
        body = {"sequence": self.sequence, "operation": self.operation}
        if self.operation == "add":
            body["documents"] = [
                {"id": d.id, "title": d.title, "text": d.text, "metadata": d.metadata} for d in self.documents
            ]
        else:
            body["ids"] = list(self.ids)
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return b"%08x %s\n" % (zlib.crc32(text), text)

    @classmethod
    def parse(cls, line: bytes) -> LogRecord | None:
        """The record of one line, or None when the line is torn or damaged."""
        checksum, _, text = line.rstrip(b"\n").partition(b" ")
        try:
            if int(checksum, 16) != zlib.crc32(text):
                return None
            body = json.loads(text)
            documents = tuple(
                Document(d["id"], d["title"], d["text"], d["metadata"]) for d in body.get("documents", ())
            )
            return cls(int(body["sequence"]), body["operation"], documents, tuple(body.get("ids", ())))
        except (ValueError, KeyError, TypeError):
            return None

    def changes(self) -> Iterable[tuple[str, Document | None]]:
        """(id, the document it now has, or None when deleted), in the record's order."""
        if self.operation == "add":
            return ((document.id, document) for document in self.documents)
        return ((doc_id, None) for doc_id in self.ids)


@dataclass
class _Open:
    """The file appends go to."""

    path: Path
    handle: object = field(repr=False)


class WriteAheadLog:
    """The write-ahead log of ``index_dir``, owned by this process until :meth:`close`.

    Args:
        index_dir: The index directory; the log is its ``wal`` folder.
        applied: The last sequence the live version holds; :meth:`replay` returns the records after it.

    Raises:
        LogOwnedError: another live process owns the log.

    Example:
        >>> import tempfile
        >>> log = WriteAheadLog(tempfile.mkdtemp(), applied=0)
        >>> log.append("delete", ids=["d1"]).sequence
        1
        >>> [record.ids for record in WriteAheadLog.read(log.directory, after=0)]
        [('d1',)]
        >>> log.close()
    """

    def __init__(self, index_dir: str | Path, applied: int) -> None:
        self.directory = Path(index_dir) / layout.LOG_DIR
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._owner = open(self.directory / OWNER_NAME, "a+", encoding="utf-8")
        except OSError as error:
            raise layout.not_writable(self.directory, error) from None
        try:
            fcntl.flock(self._owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._owner.seek(0)
            holder = self._owner.read().strip() or "another process"
            self._owner.close()
            raise LogOwnedError(
                f"{index_dir} takes writes through another server ({holder}); send them there"
            ) from None
        self._owner.seek(0)
        self._owner.truncate()
        self._owner.write(f"process {os.getpid()}")
        self._owner.flush()
        self.records = self.read(self.directory, after=applied)
        last = max([applied, *(record.sequence for record in self.read(self.directory, after=-1))])
        self.next_sequence = last + 1
        self._open: _Open | None = None

    @staticmethod
    def read(directory: Path, after: int) -> list[LogRecord]:
        """The intact records of ``directory`` with a sequence above ``after``, in order."""
        records = []
        for path in _log_files(directory):
            with path.open("rb") as handle:
                for line in handle:
                    record = LogRecord.parse(line) if line.endswith(b"\n") else None
                    if record is None:  # a torn tail: what follows it in this file was never written
                        logger.warning("%s: dropping a torn record (a write that was never acknowledged)", path)
                        break
                    if record.sequence > after:
                        records.append(record)
        failpoint("log-replay")
        return sorted(records, key=lambda record: record.sequence)

    def append(self, operation: str, documents: Iterable[Document] = (), ids: Iterable[str] = ()) -> LogRecord:
        """Write one record and fsync it; returns it once it is on disk. Not thread-safe: the caller
        serialises appends (:class:`~dualsearch.service.writes.ServiceWrites` does)."""
        record = LogRecord(self.next_sequence, operation, tuple(documents), tuple(ids))
        opened = self._open or self._start_file(record.sequence)
        try:
            opened.handle.write(record.line())
            failpoint("log-append")
            opened.handle.flush()
            os.fsync(opened.handle.fileno())
        except OSError as error:
            # the file may now end in a torn record: later appends go to a new file, after it
            self._close_file()
            raise layout.not_writable(opened.path, error) from None
        self.next_sequence += 1
        return record

    def rotate(self) -> None:
        """Send the next appends to a new file (a refresh takes the records written so far)."""
        self._close_file()

    def discard_through(self, sequence: int) -> None:
        """Remove the files whose records a published version holds (all at or below ``sequence``)."""
        files = _log_files(self.directory)
        for path, following in zip(files, [*files[1:], None], strict=True):
            if self._open is not None and path == self._open.path:
                break
            last = _first_sequence(following) - 1 if following is not None else self.next_sequence - 1
            if last <= sequence:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        self._close_file()
        if self._owner is not None:
            self._owner.truncate(0)
            fcntl.flock(self._owner, fcntl.LOCK_UN)
            self._owner.close()
            self._owner = None

    def _start_file(self, sequence: int) -> _Open:
        path = self.directory / f"{sequence:012d}{SUFFIX}"
        try:
            handle = open(path, "ab")
            fsync_path(self.directory)  # the new file's name is on disk before its first record counts
        except OSError as error:
            raise layout.not_writable(path, error) from None
        self._open = _Open(path, handle)
        return self._open

    def _close_file(self) -> None:
        if self._open is not None:
            self._open.handle.close()
            self._open = None


def _log_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"), key=_first_sequence)


def _first_sequence(path: Path) -> int:
    try:
        return int(path.name.removesuffix(SUFFIX))
    except ValueError:
        raise DualsearchError(f"{path}: not a write-ahead log file of dualsearch; remove it") from None
