"""The query tower an index carries, so that searching it needs neither torch nor the model.

Every index build and re-index saves the query tower that built the index as an ONNX graph in
``DIR/towers/query-<backend>-<weights sha256>/`` (:mod:`dualsearch.towers.exported`): fp32 when the index
was built by PyTorch towers (its vectors equal PyTorch's within 1e-4 cosine), or a copy of the ONNX
query tower that built it. The manifest of each version records the checksum of every file of the
tower (``query_tower_files``), so :func:`index_encoder` serves it only after checking those files (a
truncated or edited ``tokenizer.json`` or ``tower.json`` too), that the graph is the one recorded at
export, and that it came from the query tower the manifest names; otherwise it says why and searches
through PyTorch. An index written before the checksums were recorded is served unchecked. Documents
(adding, explaining a document side) still go through the full towers, loaded on first need.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from dualsearch.defaults import BATCH_SIZE
from dualsearch.errors import DualsearchError, IndexCorruptError, IndexMismatchError
from dualsearch.index import layout
from dualsearch.index.manifest import Manifest
from dualsearch.towers.contract import Encoder, TowerIdentity
from dualsearch.towers.exported import EXPORTED_BACKENDS, TOWER_FILE, OnnxEncoder, OnnxTower

logger = logging.getLogger(__name__)

TOWERS_DIR = "towers"
KEEP_TOWERS = 2  # the live version's query tower and the one before it (a reader may still be opening it)


def light_tower_dir(index_dir: Path, backend: str, query_weights_sha256: str) -> Path:
    return Path(index_dir) / TOWERS_DIR / f"query-{backend}-{query_weights_sha256[:32]}"


def save_query_tower(index_dir: str | Path, encoder: Encoder, recorded: dict | None = None) -> Path | None:
    """Save ``encoder``'s query tower in ``index_dir`` for the light path, unless it is there already
    and intact by the checksums ``recorded`` in the live version's manifest (``query_tower_files``).

    Returns its directory, or None when the towers cannot be exported (a test double, no onnx): the
    index is complete without it, and searches then load PyTorch.
    """
    export = getattr(encoder, "export_query_tower", None)  # DualEncoder and OnnxEncoder have it
    if export is None:
        return None
    identity = encoder.identity()
    backend = identity.query_backend if identity.query_backend in EXPORTED_BACKENDS else "onnx"
    target = light_tower_dir(Path(index_dir), backend, identity.tower_sha256("query"))
    if (target / TOWER_FILE).is_file():
        problem = tower_files_problem(Path(index_dir), target, recorded or {})
        if problem is None:
            return target
        logger.warning("saving the query tower of %s again: %s", index_dir, problem)
        shutil.rmtree(target, ignore_errors=True)
    try:
        export(target)
    except (DualsearchError, OSError, RuntimeError) as error:  # torch's exporter raises RuntimeError
        logger.warning("could not save the ONNX query tower in %s (%s); searches will load PyTorch", index_dir, error)
        return None
    _remove_old_towers(target)
    return target


def _remove_old_towers(current: Path) -> None:
    others = sorted(
        (path for path in current.parent.glob("query-*") if path != current), key=lambda path: path.stat().st_mtime
    )
    for path in others[: max(0, len(others) - (KEEP_TOWERS - 1))]:
        shutil.rmtree(path, ignore_errors=True)


def tower_files_problem(index_dir: Path, tower_dir: Path, recorded: dict[str, dict]) -> str | None:
    """What is wrong with the files of ``tower_dir`` by the checksums ``recorded`` for them (paths
    relative to ``index_dir``), or None (also when none are recorded: a tower saved before they were)."""
    prefix = tower_dir.relative_to(index_dir).as_posix() + "/"
    own = {name: checksum for name, checksum in recorded.items() if name.startswith(prefix)}
    try:
        layout.verify_listed_files(index_dir, own)
    except IndexCorruptError as error:
        return str(error).removesuffix(f". {IndexCorruptError.RECOVERY}")
    return None


def find_light_tower(index_dir: str | Path, manifest: Manifest) -> Path | None:
    """The directory of the index's ONNX query tower for ``manifest``'s query tower, if there is one."""
    if not manifest.query_weights_sha256:  # a manifest older than per-tower hashes
        return None
    backends = [backend for backend in (manifest.query_backend, *EXPORTED_BACKENDS) if backend in EXPORTED_BACKENDS]
    for backend in backends:
        path = light_tower_dir(Path(index_dir), backend, manifest.query_weights_sha256)
        if (path / TOWER_FILE).is_file():
            return path
    return None


def index_encoder(
    index_dir: str | Path, manifest: Manifest, fallback_backend: str | None = None, batch_size: int = BATCH_SIZE
) -> Encoder:
    """The towers that built the index: its own ONNX query tower (documents loaded on first need), or
    else ``manifest.model`` on ``fallback_backend`` (default: the backend that encoded its documents, which
    writes need; searching alone can take ``"torch"``, which needs no onnxruntime)."""
    light = open_light_encoder(index_dir, manifest, batch_size)
    if light is not None:
        return light
    from dualsearch.towers.backends import load_encoder

    return load_encoder(manifest.model, fallback_backend or manifest.document_backend, batch_size)


def open_light_encoder(index_dir: str | Path, manifest: Manifest, batch_size: int = BATCH_SIZE) -> OnnxEncoder | None:
    """The index's own query tower on ONNX Runtime, or None (with one log line saying why) when the
    index has none or it cannot be used; the caller then loads the PyTorch towers."""
    from dualsearch.towers.exported import runtime_modules

    found = find_light_tower(index_dir, manifest)
    if found is None:
        saved = sorted(path.name for path in (Path(index_dir) / TOWERS_DIR).glob("query-*"))
        if manifest.query_weights_sha256 and saved:  # towers saved, none of them this manifest's
            logger.warning(
                "%s holds ONNX query towers (%s), but none is the query tower its manifest names (sha256 %s); "
                "searching through PyTorch",
                index_dir,
                ", ".join(saved),
                manifest.query_weights_sha256[:32],
            )
            return None
        logger.warning(
            "%s has no ONNX query tower (it was built before dualsearch saved one); searching through PyTorch, "
            "which takes seconds to load. `dualsearch reindex %s --corpus CORPUS` adds it",
            index_dir,
            index_dir,
        )
        return None
    problem = tower_files_problem(Path(index_dir), found, manifest.query_tower_files)
    if problem is not None:
        logger.warning("cannot use the ONNX query tower of %s (%s); searching through PyTorch", index_dir, problem)
        return None
    try:
        runtime_modules()
        tower = OnnxTower(found)
    except DualsearchError as error:
        logger.warning("cannot use the ONNX query tower of %s (%s); searching through PyTorch", index_dir, error)
        return None
    if tower.config.source_weights_sha256 != manifest.query_weights_sha256:
        logger.warning("the ONNX query tower in %s is not the index's; searching through PyTorch", found)
        return None
    if tower.config.dimension != manifest.dimension:  # a tower.json edited in an index without checksums
        logger.warning(
            "the ONNX query tower in %s gives %d-d vectors, the index holds %d-d ones; searching through PyTorch",
            found,
            tower.config.dimension,
            manifest.dimension,
        )
        return None
    identity = TowerIdentity(
        manifest.model,
        manifest.weights_sha256,
        manifest.dimension,
        tuple(manifest.routes),
        query_weights_sha256=tower.config.source_weights_sha256,
        document_weights_sha256=manifest.document_weights_sha256,
        query_backend=tower.config.backend,
        document_backend=manifest.document_backend,
        similarity=tower.config.similarity,
    )
    return OnnxEncoder(tower, identity, load_documents=lambda: _document_towers(manifest), batch_size=batch_size)


def _document_towers(manifest: Manifest) -> Encoder:
    """The towers that encoded the index's documents, loaded when a document must be encoded."""
    from dualsearch.towers.backends import load_encoder

    encoder = load_encoder(manifest.model, manifest.document_backend)
    if encoder.identity().tower_sha256("document") != manifest.document_weights_sha256:
        raise IndexMismatchError(
            f"the towers at {manifest.model!r} are no longer the ones that built this index (document tower "
            "weights differ); pass the right ones, or re-index"
        )
    return encoder
