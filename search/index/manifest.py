"""``manifest.json``: what an index version is, what built it, and checksums of its files.

Reading a manifest checks its values, not only their types: each against the others and against the
sizes it records for its files (:meth:`Manifest.read`); opening a version then checks it against the
files themselves (:meth:`Manifest.check_opened`). An edit that keeps the manifest valid JSON (and
whose editor recomputed its checksum in ``CURRENT``) is refused there, naming the manifest, instead
of failing later in FAISS or NumPy, or silently changing results.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dualsearch.errors import IndexCorruptError, IndexMismatchError
from dualsearch.records import read_json_record
from dualsearch.towers.contract import TowerIdentity
from dualsearch.towers.similarity import METRICS

FORMAT_VERSION = 3  # 2: passages, a BM25 index and search settings; 3: segments with deletions
SEGMENTS_DIR = "segments"  # DIR/segments/<name>/: one immutable segment (docs/segments.md)
MANIFEST_NAME = "manifest.json"
INDEX_FILE, STORE_FILE, VECTORS_FILE = "index.faiss", "documents.sqlite", "vectors.f32"
PASSAGES_FILE = "passages.npy"  # a segment's passages per document (int32); older segments: in the store
IVFDATA_FILE = "index.ivfdata"  # the inverted lists of an index built with on_disk (dualsearch.index.ondisk)
FLOAT32_BYTES = 4
MAX_NPROBE = 2**31 - 1  # FAISS takes nprobe and efSearch as C ints
_LEGACY_FIELDS = ("next_row_id",)


@dataclass(frozen=True)
class SegmentEntry:
    """One segment of a version, as its manifest lists it (files relative to the segment's directory)."""

    name: str  # its directory under DIR/segments/
    documents: int  # document rows, the deleted included
    passages: int  # vector rows
    files: dict[str, dict[str, Any]]  # file -> {"bytes": n, "sha256": hex}, the deletion file included
    deleted: str = ""  # the file of its deleted rows as of this version ("": none deleted)
    deleted_count: int = 0

    @property
    def live_count(self) -> int:
        return self.documents - self.deleted_count

    def record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def problem(self, dimension: int, on_disk: bool) -> str | None:
        """What is wrong with this entry's values, seen together, or None."""
        if not self.name or "/" in self.name or self.name.startswith("."):
            return f"segment name {self.name!r} is not a directory name"
        if self.documents < 1 or self.passages < self.documents:
            return f"segment {self.name}: {self.documents} documents and {self.passages} passages"
        if not 0 <= self.deleted_count < self.documents or bool(self.deleted) != bool(self.deleted_count):
            return f"segment {self.name}: {self.deleted_count} deleted of {self.documents} in {self.deleted!r}"
        missing = [
            name for name in (INDEX_FILE, STORE_FILE, VECTORS_FILE, self.deleted) if name and name not in self.files
        ]
        if missing:
            return f"segment {self.name} lists no checksum for {', '.join(missing)}"
        expected, recorded = self.passages * dimension * FLOAT32_BYTES, self.files[VECTORS_FILE].get("bytes")
        if recorded != expected:
            return (
                f"segment {self.name}: dimension {dimension} and {self.passages} passages call for {expected} bytes "
                f"of vectors; {VECTORS_FILE} has {recorded}"
            )
        if on_disk != (IVFDATA_FILE in self.files):
            return f"segment {self.name}: on_disk {on_disk} does not fit the files listed"
        return None


@dataclass(frozen=True)
class Manifest:
    """Self-description of one index version (every field is written to ``manifest.json``)."""

    model: str  # path or hub id of the towers ("default" = packaged all-MiniLM-L6-v2 pair)
    weights_sha256: str  # parameter hash of the whole model (both towers)
    routes: list[str]  # Router routes, [] when one model serves both sides
    dimension: int
    factory: str  # exact FAISS factory string built
    nlist: int  # inverted lists (0 for non-IVF indexes)
    default_nprobe: int  # calibrated at build time; 0 for non-IVF indexes
    document_count: int  # live documents, over every segment
    corpus: str  # the corpus the index was built from, as given
    files: dict[str, dict[str, Any]]  # the version directory's own files (none besides this one since format 3)
    passage_count: int = 0  # live documents' vector rows: one per passage (a document that fits is one passage)
    passages: dict[str, int | bool | None] = field(default_factory=dict)  # window, stride, max_passages[, lead]
    lexical: dict[str, Any] = field(default_factory=dict)  # the BM25 index's library and settings
    search: dict[str, Any] = field(default_factory=dict)  # default search settings (SearchSettings)
    filter_fields: list[str] = field(default_factory=list)  # metadata fields indexed for filtering
    trained_count: int = 0  # vectors the IVF centroids were trained on
    trained_at: str = ""  # when they were trained (re-indexing retrains by the policy in dualsearch.write.reindex)
    added_since_training: int = 0  # vectors encoded since then (new and changed documents)
    metric: str = "inner_product"  # FAISS metric: "inner_product" (cosine, dot) or "l2" (euclidean)
    similarity: str = "cosine"  # the towers' (dualsearch.towers.similarity); cosine vectors are L2-normalised
    format_version: int = FORMAT_VERSION
    library_versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    build: dict[str, Any] = field(default_factory=dict)  # settings used: batch size, seed, timings
    # each tower's own parameter hash; empty in manifests written before towers were hashed apart
    query_weights_sha256: str = ""
    document_weights_sha256: str = ""  # the tower that encoded the vectors: what re-encoding depends on
    # what ran each tower ("torch", "onnx", "onnx-int8"; dualsearch.towers.backends): vectors of other backends
    # agree only within a measured bound, so re-encoding depends on the document tower's too
    query_backend: str = "torch"
    document_backend: str = "torch"
    on_disk: bool = False  # IVF lists in index.ivfdata, memory-mapped at search time (dualsearch.index.ondisk)
    # checksums of every file of the index's saved query tower (dualsearch.index.query_tower), by path
    # relative to the index directory; empty in manifests written before they were recorded
    query_tower_files: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the version's segments in row order: SegmentEntry records (docs/segments.md)
    segments: list[dict[str, Any]] = field(default_factory=list)
    # the last record of the service's write-ahead log this version holds (dualsearch.write.write_log):
    # a server replays the records after it at start; 0 when no logged write was ever applied
    log_sequence: int = 0

    def segment_entries(self) -> list[SegmentEntry]:
        """The segments, checked as records (their values are checked by :meth:`value_problem`)."""
        from dualsearch.records import record_from_json

        return [
            record_from_json(SegmentEntry, entry, f"{MANIFEST_NAME} segment {number}", IndexCorruptError)
            for number, entry in enumerate(self.segments)
        ]

    def differing_towers(self, identity: TowerIdentity) -> list[str]:
        """Which of ``"query"`` and ``"document"`` differ from the towers that built this version.

        A manifest without per-tower hashes knows only the whole model's: any difference counts as both.

        Example:
            >>> built = TowerIdentity("m", "ab", 4, ("document", "query"), "a", "b")
            >>> manifest = Manifest("m", "ab", [], 4, "Flat", 0, 0, 1, "c", {}, query_weights_sha256="a",
            ...                     document_weights_sha256="b")
            >>> manifest.differing_towers(built), manifest.differing_towers(TowerIdentity("m", "xb", 4, (), "x", "b"))
            ([], ['query'])
        """
        if not (self.query_weights_sha256 and self.document_weights_sha256):
            return [] if self.weights_sha256 == identity.weights_sha256 else ["query", "document"]
        recorded = {"query": self.query_weights_sha256, "document": self.document_weights_sha256}
        return [side for side, sha256 in recorded.items() if sha256 != identity.tower_sha256(side)]

    def vectors_reusable_by(self, identity: TowerIdentity) -> bool:
        """True if ``identity``'s document tower, on its backend, encodes exactly as the one that built
        these vectors."""
        same_backend = self.document_backend == identity.document_backend
        same_similarity = self.similarity == identity.similarity  # normalised or not: other vectors
        return same_backend and same_similarity and "document" not in self.differing_towers(identity)

    def write(self, directory: Path) -> None:
        path = directory / MANIFEST_NAME
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        def check_format(data: dict) -> None:
            found = data.get("format_version")
            if found != FORMAT_VERSION:
                how = (
                    f"convert it with `dualsearch upgrade {directory.parent}` (nothing is encoded again)"
                    if isinstance(found, int) and found < FORMAT_VERSION
                    else "a newer dualsearch wrote it: upgrade dualsearch"
                )
                raise IndexMismatchError(
                    f"{directory / MANIFEST_NAME}: index format {found!r}; this dualsearch reads format "
                    f"{FORMAT_VERSION}: {how}"
                )

        missing = f"index version {directory} has no {MANIFEST_NAME}"
        manifest = read_json_record(
            cls, directory / MANIFEST_NAME, IndexCorruptError, missing, _LEGACY_FIELDS, check_format
        )
        problem = manifest.value_problem()
        if problem is not None:
            raise IndexCorruptError(f"{directory / MANIFEST_NAME} is damaged or edited: {problem}")
        return manifest

    def value_problem(self) -> str | None:
        """What is wrong with this manifest's values, seen together (their types are checked on read),
        or None.

        Example:
            >>> files = {name: {"bytes": 0} for name in (INDEX_FILE, STORE_FILE)} | {VECTORS_FILE: {"bytes": 48}}
            >>> segment = SegmentEntry("s000001", documents=3, passages=3, files=files).record()
            >>> flat = dict(factory="Flat", nlist=0, default_nprobe=0, passage_count=3, segments=[segment])
            >>> flat["passages"] = {"window": 8, "stride": 8}
            >>> Manifest("m", "ab", [], 4, document_count=3, corpus="c", files={}, **flat).value_problem() is None
            True
            >>> Manifest("m", "ab", [], 7, document_count=3, corpus="c", files={}, **flat).value_problem()
            'segment s000001: dimension 7 and 3 passages call for 84 bytes of vectors; vectors.f32 has 48'
        """
        for check in (self._counts_problem, self._segments_problem, self._index_problem, self._settings_problem):
            problem = check()
            if problem is not None:
                return problem
        return None

    def check_opened(self, directory: Path, entry: SegmentEntry, passage_counts, index=None) -> None:
        """Refuse a segment whose files disagree with its entry in this manifest: ``passage_counts`` are
        its store's (passages of each document,
        :meth:`~dualsearch.index.store.DocumentStoreReader.passage_counts`), ``index`` the FAISS index
        read from it (optional). ``directory`` is the version's."""
        problem = _store_problem(entry, passage_counts) or (
            self._faiss_problem(entry, index) if index is not None else None
        )
        if problem is not None:
            raise IndexCorruptError(f"{directory / MANIFEST_NAME} is damaged or edited: {problem}")

    def _faiss_problem(self, entry: SegmentEntry, index) -> str | None:
        import faiss

        from dualsearch.index.ann import ivf_part

        ivf = ivf_part(index)
        metric = {faiss.METRIC_INNER_PRODUCT: "inner_product", faiss.METRIC_L2: "l2"}.get(index.metric_type)
        found = (index.d, index.ntotal, metric, ivf.nlist if ivf is not None else 0)
        if found != (self.dimension, entry.passages, self.metric, self.nlist):
            recorded = (self.dimension, entry.passages, self.metric, self.nlist)
            return (
                f"(dimension, vectors, metric, nlist) {recorded}, but segment {entry.name}'s {INDEX_FILE} holds {found}"
            )
        return None

    def _counts_problem(self) -> str | None:
        if self.dimension < 1 or self.document_count < 1:
            return f"dimension {self.dimension} and document_count {self.document_count} must be at least 1"
        if self.passage_count < self.document_count:
            return f"passage_count {self.passage_count} is below document_count {self.document_count}"
        if self.log_sequence < 0:
            return f"log_sequence {self.log_sequence} is negative"
        return None

    def _segments_problem(self) -> str | None:
        try:
            entries = self.segment_entries()
        except IndexCorruptError as error:
            return str(error)
        if not entries:
            return "no segments"
        if len({entry.name for entry in entries}) < len(entries):
            return "a segment is listed twice"
        for entry in entries:
            problem = entry.problem(self.dimension, self.on_disk)
            if problem is not None:
                return problem
        live = sum(entry.live_count for entry in entries)
        if live != self.document_count:
            return f"document_count {self.document_count}, but the segments hold {live} live documents"
        return None

    def _index_problem(self) -> str | None:
        ivf = "IVF" in self.factory
        rows = sum(entry.get("passages", 0) for entry in self.segments)
        if ivf and not 1 <= self.nlist <= max(rows, self.trained_count):
            return f"nlist {self.nlist} is not between 1 and the {rows} vectors of factory {self.factory!r}"
        if not ivf and self.nlist != 0:
            return f"factory {self.factory!r} has no inverted lists, yet nlist {self.nlist}"
        if not 0 <= self.default_nprobe <= (self.nlist if ivf else 0):
            return f"default_nprobe {self.default_nprobe} is not between 0 and nlist {self.nlist}"
        if METRICS.get(self.similarity) != self.metric:
            return f"metric {self.metric!r} is not the one of similarity {self.similarity!r}"
        if self.on_disk and not ivf:
            return f"on_disk {self.on_disk} does not fit factory {self.factory!r}"
        return None

    def _settings_problem(self) -> str | None:
        window, stride = self.passages.get("window"), self.passages.get("stride")
        if not _is_count(window, 1) or not _is_count(stride, 1) or stride > window:
            return f"passages.window {window!r} and stride {stride!r} must be whole numbers, 1 <= stride <= window"
        if self.passages.get("max_passages") is not None and not _is_count(self.passages["max_passages"], 1):
            return f"passages.max_passages {self.passages['max_passages']!r} must be a whole number of at least 1"
        for name in ("k1", "b"):
            value = self.lexical.get(name)
            if name in self.lexical and (not _is_number(value) or value < 0):
                return f"lexical.{name} {value!r} must be a number of at least 0"
        return None


def _store_problem(entry: SegmentEntry, passage_counts) -> str | None:
    documents, passages = len(passage_counts), int(np.sum(passage_counts, dtype=np.int64))
    if (documents, passages) != (entry.documents, entry.passages):
        return (
            f"segment {entry.name} has {entry.documents} documents and {entry.passages} passages, but its "
            f"{STORE_FILE} holds {documents} documents of {passages} passages"
        )
    return None


def _is_count(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


@functools.cache  # reading package metadata costs a write more than its manifest does
def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("dualsearch", "faiss-cpu", "sentence-transformers", "transformers", "torch", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
