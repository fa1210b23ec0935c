"""Which runtime encodes with the towers: PyTorch, ONNX Runtime in fp32 or with int8 weights, or OpenVINO.

``load_encoder(model, backend)`` is how every command gets its towers. A PyTorch model (``default``, a
path or a hub id) asked for on an ONNX backend is exported once, locally, into
``$DUALSEARCH_HOME/towers/`` (keyed by its weights' hash) and served from there; a directory written
by ``dualsearch export`` is served as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dualsearch.defaults import BATCH_SIZE, DEFAULT_MODEL, home_dir
from dualsearch.errors import ModelError
from dualsearch.towers.exported import (
    CALIBRATED_BACKENDS,
    EXPORTED_BACKENDS,
    OnnxEncoder,
    TowersManifest,
    is_towers_dir,
)

logger = logging.getLogger(__name__)

BACKENDS = ("torch", *EXPORTED_BACKENDS)
# What `dualsearch index` (and the default index) encode documents with: on SciFact, int8 towers kept
# PyTorch's quality and encoded documents and answered queries several times as fast (python -m bench
# backends, results/backends.json, docs/backends.md). OpenVINO int8 encodes faster still, but needs an
# extra and a calibration export, and answers queries slower.
DEFAULT_BACKEND = "onnx-int8"


def load_encoder(model: str = DEFAULT_MODEL, backend: str | None = None, batch_size: int = BATCH_SIZE):
    """Towers for ``model`` on ``backend`` (None: an exported directory's own, else :data:`DEFAULT_BACKEND`)."""
    if backend is not None and backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if is_towers_dir(model):
        encoder = OnnxEncoder.load(model, batch_size=batch_size)
        own = encoder.identity().document_backend
        if backend is not None and backend != own:
            raise ModelError(f"{model} holds towers exported for {own}; it cannot run on {backend}")
        return encoder
    from dualsearch.towers.dual_encoder import DualEncoder

    torch_encoder = DualEncoder.load(model, batch_size=batch_size)
    backend = backend or DEFAULT_BACKEND
    return torch_encoder if backend == "torch" else exported_encoder(torch_encoder, backend)


def exported_encoder(torch_encoder, backend: str) -> OnnxEncoder:
    """``torch_encoder``'s towers on an ONNX backend, exported on first use into the towers cache."""
    if backend in CALIBRATED_BACKENDS:  # the export depends on the documents, not only on the weights
        raise ModelError(
            f"{backend} towers are calibrated on your own documents, so they are exported once, by you: "
            f"`dualsearch export {torch_encoder.model_name} --out TOWERS --backend {backend} --calibration CORPUS`, "
            "then pass --model TOWERS"
        )
    identity = torch_encoder.identity()
    directory = towers_cache_dir() / f"{backend}-{identity.weights_sha256[:32]}"
    shipped = shipped_towers_dir(Path(torch_encoder.model_name), backend)
    if is_towers_dir(shipped) and _exported(TowersManifest.read(shipped), identity.weights_sha256, backend):
        directory = shipped  # exported by `dualsearch finetune` with these very weights, for this backend
    elif not is_towers_dir(directory):
        from dualsearch.towers.export import export_towers

        logger.info("exporting the towers to %s (%s), once for these weights", directory, backend)
        try:
            export_towers(torch_encoder, directory, backend)
        except OSError:
            if not is_towers_dir(directory):  # not a concurrent export that got there first
                raise
    # the same weights may have been exported from another path first: report this model's own name
    return OnnxEncoder.load(directory, batch_size=torch_encoder.batch_size, model_name=identity.model)


def _exported(manifest: TowersManifest, weights_sha256: str, backend: str) -> bool:
    """Whether a towers directory holds these weights exported for ``backend`` (before 0.5.0, `dualsearch
    finetune` wrote fp32 towers into its ``dualsearch-onnx-int8`` directory: those are not int8 towers)."""
    return manifest.weights_sha256 == weights_sha256 and manifest.backend == backend


def shipped_towers_dir(model_dir: Path, backend: str) -> Path:
    """Where a model directory keeps its own towers exported for ``backend`` (``dualsearch finetune``
    writes them for the default backend)."""
    return Path(model_dir) / f"dualsearch-{backend}"


def towers_cache_dir() -> Path:
    """``$DUALSEARCH_HOME/towers``: exported towers, one directory per weights hash and backend."""
    return home_dir() / "towers"
