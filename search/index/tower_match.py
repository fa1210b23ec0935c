"""Whether given towers are the ones an index version was built with: :func:`check_towers` for
searching it, :func:`check_writable_towers` for adding to it or deleting from it.

Searching needs the same query and document towers with the same similarity (the document backend
may differ within a measured bound). Adding or deleting documents keeps every stored vector, so it
needs more: towers that would encode a document exactly as the index's own did. Changing towers is
a re-index (``dualsearch reindex --model``), never a side effect of a one-document write.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dualsearch.errors import IndexMismatchError
from dualsearch.index.manifest import Manifest
from dualsearch.towers.contract import Encoder

logger = logging.getLogger(__name__)

FP32_BACKENDS = {"torch", "onnx"}  # the same vectors within 1e-4 cosine: mixing them needs no word


def check_towers(manifest: Manifest, encoder: Encoder, index_dir: Path) -> None:
    """Refuse towers other than the ones that built the index, saying which tower differs."""
    identity = encoder.identity()
    differing = manifest.differing_towers(identity)
    if identity.dimension != manifest.dimension:
        differing = ["query", "document"]
    if not differing and identity.similarity != manifest.similarity:
        raise IndexMismatchError(
            f"{index_dir} was built for towers that compare vectors by {manifest.similarity} similarity; the towers "
            f"given ({identity.model!r}, same weights) compare by {identity.similarity}. Open it with the towers "
            "as they were, or re-index"
        )
    if not differing:
        backends = {identity.query_backend, manifest.document_backend}
        if len(backends) > 1 and not backends <= FP32_BACKENDS:
            # int8, bf16 and fp32 vectors of the same towers are interchangeable within the bound the
            # backends benchmark measures (docs/backends.md): allowed, and said
            logger.info(
                "queries encoded on %s against document vectors encoded on %s (same towers)",
                identity.query_backend,
                manifest.document_backend,
            )
        return
    built = f"{index_dir} was built with towers {manifest.model!r} (dimension {manifest.dimension})"
    given = f"the towers given are {identity.model!r} (dimension {identity.dimension})"
    if differing == ["query"]:
        raise IndexMismatchError(
            f"{built}; {given}, whose query tower differs (sha256 {identity.tower_sha256('query')[:12]} against "
            f"{manifest.query_weights_sha256[:12]}) and whose document tower is the same. Run `dualsearch reindex` "
            "with these towers to swap the query tower in: it re-encodes no document"
        )
    which = "document tower differs" if differing == ["document"] else "towers differ"
    raise IndexMismatchError(
        f"{built}; {given}, whose {which} (weights sha256 {identity.weights_sha256[:12]} against "
        f"{manifest.weights_sha256[:12]}). Open it with the towers that built it, or re-index"
    )


def check_writable_towers(manifest: Manifest, encoder: Encoder, index_dir: Path) -> None:
    """Refuse to add to or delete from an index with towers other than the ones that built its live
    version: the write would re-encode every document and publish a version of other towers, undoing
    (or making) a towers change nobody asked for."""
    identity = encoder.identity()
    differing = manifest.differing_towers(identity)
    if not differing and manifest.vectors_reusable_by(identity):
        return
    built = (
        f"{index_dir}'s live version was built with towers {manifest.model!r} (documents encoded on "
        f"{manifest.document_backend}, {manifest.similarity} similarity)"
    )
    given = (
        f"the towers given are {identity.model!r} ({identity.document_backend}, {identity.similarity} similarity"
        + (f", other {' and '.join(differing)} weights)" if differing else ")")
    )
    raise IndexMismatchError(
        f"{built}; {given}. Adding or deleting documents keeps the index's towers: use the towers that built "
        "it, or change towers with `dualsearch reindex DIR --corpus CORPUS --model MODEL`"
    )
