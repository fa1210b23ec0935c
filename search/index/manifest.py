"""``manifest.json``: what an index version is, what built it, and checksums of its files."""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualsearch.errors import IndexCorruptError, IndexMismatchError
from dualsearch.records import read_json_record
from dualsearch.towers.contract import TowerIdentity

FORMAT_VERSION = 2  # 2: passages, a BM25 index and search settings
MANIFEST_NAME = "manifest.json"
_LEGACY_FIELDS = ("next_row_id",)


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
    document_count: int
    corpus: str  # the corpus the index was built from, as given
    files: dict[str, dict[str, Any]]  # file name -> {"bytes": n, "sha256": hex}
    passage_count: int = 0  # vector rows: one per passage (a document that fits is one passage)
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
        return read_json_record(
            cls, directory / MANIFEST_NAME, IndexCorruptError, missing, _LEGACY_FIELDS, check_format
        )


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
