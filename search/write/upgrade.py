"""Convert an index written in an older format into today's: :func:`upgrade` (``dualsearch upgrade DIR``).

Format 1 (the first releases) held one vector per document, the document tower's encoding of its
title and text cut at the tower's window, with neither passages, nor a BM25 index, nor search
settings. Format 2 held passages, a bm25s index and search settings, all in one version directory.
Format 3 keeps documents in segments with deletions (docs/segments.md). Upgrading writes a format-3
version beside the old one through the one write transaction
(:class:`~dualsearch.write.version_writer.VersionWriter`), under the writer lock:

- every document keeps its stored vectors (a format-1 document becomes one passage, the cut format 1
  encoded, ``max_passages=1``): nothing is encoded again;
- the IVF centroids are kept; the BM25 postings are built from the stored texts; a format-2 index
  keeps its search settings, a format-1 one gets the engine's defaults, as a new index does;
- ``CURRENT`` switches atomically, and the old version stays for readers that opened it.

The towers that built the index are needed (the manifest names them, and they must hash the same):
they calibrate the default ``nprobe`` and the index keeps its query tower, as every build does. To
cut a format-1 index's long documents into several passages later, re-index with the same towers
and the default passage settings (``dualsearch reindex DIR --corpus CORPUS``): only the documents
that need more passages are encoded.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import faiss

from dualsearch.corpora.document import Document
from dualsearch.errors import IndexCorruptError, IndexMismatchError
from dualsearch.index import layout, ondisk
from dualsearch.index.config import IndexConfig
from dualsearch.index.manifest import FORMAT_VERSION, MANIFEST_NAME, Manifest
from dualsearch.index.passages import plan_passages
from dualsearch.index.store import DocumentStoreReader, Located
from dualsearch.index.vectors import open_vectors
from dualsearch.ranking.settings import SearchSettings
from dualsearch.records import read_json_object
from dualsearch.towers.contract import Encoder
from dualsearch.write.lock import IndexLock
from dualsearch.write.reindex import config_of
from dualsearch.write.version_writer import VersionWriter

logger = logging.getLogger(__name__)

UPGRADABLE_FORMATS = (1, 2)


@dataclass(frozen=True)
class UpgradeReport:
    """What :func:`upgrade` did."""

    from_format: int
    to_format: int
    version_dir: Path  # the live version afterwards
    documents: int
    encoded: int  # documents whose vectors had to be computed (0 for a format-1 index)
    seconds: float

    def summary(self) -> str:
        if self.from_format == self.to_format:
            return f"already format {self.to_format}: nothing to do"
        return (
            f"format {self.from_format} -> {self.to_format}: {self.documents} documents, {self.encoded} encoded, "
            f"now {self.version_dir.name} ({self.seconds:.1f}s)"
        )


def index_format(index_dir: str | Path) -> int:
    """The format of the live version of ``index_dir``, read without interpreting the rest of its manifest."""
    version_dir = layout.current_version_dir(Path(index_dir))
    return int(_raw_manifest(version_dir).get("format_version", 0))


def recorded_model(index_dir: str | Path) -> str:
    """The towers (path or hub id) the live version's manifest names, in any format."""
    version_dir = layout.current_version_dir(Path(index_dir))
    return str(_raw_manifest(version_dir).get("model", "default"))


def upgrade(index_dir: str | Path, encoder: Encoder, show_progress: bool = False) -> UpgradeReport:
    """Bring the live version of ``index_dir`` to today's format (see the module's docstring).

    Args:
        index_dir: An index directory written by any release of dualsearch.
        encoder: The towers that built it (checked against the manifest's weights hash).
        show_progress: A progress bar while the documents are copied.

    Raises:
        IndexMismatchError: a format this release cannot convert, or other towers than the index's.
        IndexCorruptError: a damaged file. IndexLockedError: another writer holds the index.

    Example:
        >>> from dualsearch.testing import FakeEncoder
        >>> upgrade("old-index", FakeEncoder(dimension=32)).summary()  # doctest: +SKIP
        'format 1 -> 3: 26 documents, 0 encoded, now v000002 (0.3s)'
    """
    index_dir, started = Path(index_dir), time.perf_counter()
    with IndexLock(index_dir):
        version_dir = layout.current_version_dir(index_dir)
        raw = _raw_manifest(version_dir)
        found = raw.get("format_version")
        if found == FORMAT_VERSION:
            count = int(raw.get("document_count", 0))
            return UpgradeReport(FORMAT_VERSION, FORMAT_VERSION, version_dir, count, 0, time.perf_counter() - started)
        if found not in UPGRADABLE_FORMATS:
            raise IndexMismatchError(
                f"{version_dir / MANIFEST_NAME}: index format {found!r}; this dualsearch converts formats "
                f"{', '.join(map(str, UPGRADABLE_FORMATS))} and reads {FORMAT_VERSION}"
            )
        layout.verify_files(version_dir, raw.get("files", {}))  # never build on a damaged base
        _check_towers(raw, encoder, version_dir)
        if found == 1:
            config = IndexConfig(factory=raw.get("build", {}).get("requested_factory"), max_passages=1)
            old = Format1Version(version_dir, raw, encoder, config.passages.record(encoder))
            settings = SearchSettings()
        else:
            old = Format2Version(version_dir, raw)
            config, settings = config_of(old.manifest, None), SearchSettings.from_dict(old.manifest.search)
        try:
            with VersionWriter(index_dir, encoder, config, live=old, search_settings=settings) as writer:
                stats = writer.write(old.documents(), show_progress, total=old.document_count)
                new_version = writer.publish(raw.get("corpus", ""), retrain=False)
        finally:
            old.close()
    report = UpgradeReport(
        found, FORMAT_VERSION, new_version, stats.total, stats.encoded, time.perf_counter() - started
    )
    logger.info("upgraded %s: %s", index_dir, report.summary())
    return report


def _raw_manifest(version_dir: Path) -> dict:
    """The manifest of a version in any format, read before its format is known."""
    missing = f"index version {version_dir} has no {MANIFEST_NAME}"
    return read_json_object(version_dir / MANIFEST_NAME, IndexCorruptError, missing)


def _check_towers(raw: dict, encoder: Encoder, version_dir: Path) -> None:
    identity = encoder.identity()
    if identity.weights_sha256 != raw.get("weights_sha256") or identity.dimension != raw.get("dimension"):
        raise IndexMismatchError(
            f"{version_dir} was built by the towers {raw.get('model')!r} (weights sha256 "
            f"{str(raw.get('weights_sha256'))[:12]}..., dimension {raw.get('dimension')}); the towers given are "
            f"{identity.model!r} ({identity.weights_sha256[:12]}..., dimension {identity.dimension}): "
            "upgrade with the towers that built the index (--model)"
        )


class Format1Version:
    """A format-1 version seen as the live version a :class:`VersionWriter` copies from: its manifest
    in today's shape, its documents as one passage each, its vectors and its trained IVF index."""

    def __init__(self, version_dir: Path, raw: dict, encoder: Encoder, passage_settings: dict) -> None:
        import sqlite3

        self.version_dir, self.encoder, self.passage_settings = version_dir, encoder, passage_settings
        self.document_count = int(raw["document_count"])
        self.manifest = _todays_manifest(raw, passage_settings)
        uri = f"{(version_dir / layout.STORE_FILE).resolve().as_uri()}?mode=ro&immutable=1"
        self.connection = sqlite3.connect(uri, uri=True)
        self.vectors = open_vectors(version_dir, self.manifest.dimension)  # (n, d) float32, mapped
        self.store = self  # the writer looks documents up through ``live.store``

    def reusable_by(self, encoder: Encoder, passage_settings: dict) -> bool:
        return passage_settings == self.passage_settings and self.manifest.vectors_reusable_by(encoder.identity())

    def empty_trained_index(self) -> faiss.Index:
        return ondisk.emptied(ondisk.read_index(self.version_dir / layout.INDEX_FILE, False))

    def documents(self) -> Iterator[Document]:
        """Every stored document, in row order."""
        query = "SELECT doc_id, title, text, metadata FROM documents ORDER BY row_id"
        for doc_id, title, text, metadata in self.connection.execute(query):
            yield Document(doc_id, title, text, json.loads(metadata))

    def lookup(self, doc_ids: Iterable[str]) -> dict[str, Located]:
        """Where each document is: its row's one vector, and the span of text that vector encoded."""
        doc_ids, found = list(doc_ids), {}
        for start in range(0, len(doc_ids), 500):  # SQLite caps the number of bound parameters
            part = doc_ids[start : start + 500]
            query = (
                "SELECT row_id, doc_id, title, text, content_hash FROM documents "
                f"WHERE doc_id IN ({','.join('?' * len(part))})"
            )
            rows = self.connection.execute(query, part).fetchall()
            documents = [Document(doc_id, title, text) for _, doc_id, title, text, _ in rows]
            window, stride = self.passage_settings["window"], self.passage_settings["stride"]
            plan = plan_passages(documents, self.encoder, window, stride, max_passages=1)
            for (row, doc_id, _, _, digest), spans in zip(rows, plan.spans, strict=True):
                found[doc_id] = Located(row, digest, row, spans[:1])
        return found

    def close(self) -> None:
        self.connection.close()


class Format2Version:
    """A format-2 version seen as the live version a :class:`VersionWriter` copies from: one directory
    holding the store, the vectors and the trained index of every document."""

    def __init__(self, version_dir: Path, raw: dict) -> None:
        known = {f.name for f in dataclasses.fields(Manifest)}
        self.version_dir = version_dir
        self.manifest = Manifest(**{name: value for name, value in raw.items() if name in known - {"format_version"}})
        self.document_count = self.manifest.document_count
        self.store = DocumentStoreReader(version_dir / layout.STORE_FILE)
        self.vectors = open_vectors(version_dir, self.manifest.dimension)  # (n, d) float32, mapped

    def reusable_by(self, encoder: Encoder, passage_settings: dict) -> bool:
        same_passages = self.manifest.passages == passage_settings
        return same_passages and self.manifest.vectors_reusable_by(encoder.identity())

    def empty_trained_index(self) -> faiss.Index:
        return ondisk.emptied(ondisk.read_index(self.version_dir / layout.INDEX_FILE, self.manifest.on_disk))

    def documents(self) -> Iterator[Document]:
        return self.store.iter_documents()

    def close(self) -> None:
        self.store.close()


def recorded_backend(index_dir: str | Path) -> str:
    """What encoded the live version's documents, in any format (format 1 knew only PyTorch)."""
    version_dir = layout.current_version_dir(Path(index_dir))
    return str(_raw_manifest(version_dir).get("document_backend", "torch"))


def _todays_manifest(raw: dict, passage_settings: dict) -> Manifest:
    """A format-1 manifest in today's shape: what format 1 left implicit written out (PyTorch towers,
    cosine, one passage per document)."""
    known = {f.name for f in dataclasses.fields(Manifest)}
    kept = {name: value for name, value in raw.items() if name in known and name != "format_version"}
    return Manifest(
        **kept
        | {
            "passage_count": int(raw["document_count"]),
            "passages": passage_settings,
            "search": dataclasses.asdict(SearchSettings()),
        }
    )
