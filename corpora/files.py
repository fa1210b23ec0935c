"""Streaming readers for corpus files: JSONL, CSV/TSV and Parquet.

Each yields ``(location, record)`` pairs one at a time, so a corpus larger than memory is never
loaded whole. Malformed input raises :class:`CorpusError` naming the file and the line.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dualsearch.corpora.metadata import parse_json
from dualsearch.errors import CorpusError, CorpusNotFoundError

RawRecord = tuple[str, dict[str, Any]]


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise CorpusNotFoundError(f"corpus file not found: {path}")


def read_jsonl(path: str | Path) -> Iterator[RawRecord]:
    """Yield each non-blank line of a JSON Lines file as a record.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "c.jsonl")
        >>> _ = open(p, "w").write('{"id": "1", "text": "hi"}\\n')
        >>> next(read_jsonl(p))[1]
        {'id': '1', 'text': 'hi'}
    """
    path = Path(path)
    _require_file(path)
    with path.open("rb") as handle:
        for line_number, raw_line in enumerate(handle, start=1):
            location = f"{path}:{line_number}"
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise CorpusError(f"{location}: not valid UTF-8 ({error.reason} at byte {error.start})") from None
            if line_number == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                continue
            try:
                record = parse_json(line.rstrip("\r\n"))
            except json.JSONDecodeError as error:
                raise CorpusError(f"{location}: invalid JSON ({error.msg} at column {error.colno})") from None
            if not isinstance(record, dict):
                raise CorpusError(f"{location}: expected a JSON object, got {type(record).__name__}")
            yield location, record


class _Utf8Lines:
    """Decode a binary file line by line so a bad byte is reported with its line number."""

    def __init__(self, path: Path, handle) -> None:
        self.path, self.handle, self.line_number = path, handle, 0

    def __iter__(self) -> Iterator[str]:
        for raw_line in self.handle:
            self.line_number += 1
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise CorpusError(
                    f"{self.path}:{self.line_number}: not valid UTF-8 ({error.reason} at byte {error.start})"
                ) from None
            yield line.removeprefix("\ufeff") if self.line_number == 1 else line


def read_delimited(path: str | Path, delimiter: str | None = None) -> Iterator[RawRecord]:
    """Yield the rows of a CSV or TSV file (header row required) as records.

    The delimiter defaults to a tab for ``.tsv`` files and a comma otherwise.
    """
    path = Path(path)
    _require_file(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    csv.field_size_limit(sys.maxsize)  # documents can be long; the default 128 KiB cap is arbitrary
    kind = "TSV" if delimiter == "\t" else "CSV"
    with path.open("rb") as handle:
        lines = _Utf8Lines(path, handle)
        # strict: a quote never closed is an error at the end of the file, instead of one document
        # silently swallowing every row after it.
        reader = csv.DictReader(lines, delimiter=delimiter, strict=True)
        row_start = 2  # the first line of the row being read (after a one-line header)
        try:
            for row in reader:
                location = f"{path}:{reader.line_num}"
                if None in row:
                    raise CorpusError(f"{location}: more fields than the header has")
                yield location, row
                row_start = reader.line_num + 1
        except csv.Error as error:
            raise CorpusError(f"{path}:{row_start}: malformed {kind} ({_csv_problem(error)})") from None
    if reader.fieldnames is None:
        raise CorpusError(f"{path}: empty file (a header row is required)")


def _csv_problem(error: csv.Error) -> str:
    if "unexpected end of data" in str(error):
        return "a quoted field that starts in this row is never closed"
    return str(error)


def read_parquet(path: str | Path, batch_size: int = 1024) -> Iterator[RawRecord]:
    """Yield the rows of a Parquet file as records, one record batch in memory at a time."""
    import pyarrow.parquet as parquet

    path = Path(path)
    _require_file(path)
    try:
        parquet_file = parquet.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for a non-Parquet file
        raise CorpusError(f"{path}: not a readable Parquet file ({error})") from None
    row_number = 0
    for batch in parquet_file.iter_batches(batch_size=batch_size):
        for record in batch.to_pylist():
            row_number += 1
            yield f"{path}: row {row_number}", record
