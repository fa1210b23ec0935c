"""The model to train: separate ``query`` and ``document`` towers (a Router over two copies of the base),
or, tied, the base itself serving both sides."""

from __future__ import annotations

import logging

from dualsearch.errors import ModelError
from dualsearch.towers.weights import (
    DOCUMENT_ROUTE,
    QUERY_ROUTE,
    load_sentence_transformer,
    resolve_base,
    router_routes,
)

logger = logging.getLogger(__name__)


def build_training_model(
    base: str = "default",
    tied: bool = False,
    max_query_length: int = 64,
    max_document_length: int | None = None,
    similarity: str = "cosine",
    device: str = "cpu",
):
    """Load the towers to fine-tune from ``base`` (``default``, a local path or a hub id), comparing
    vectors by ``similarity`` (:func:`use_similarity`).

    Separate towers (``tied=False``) are two independently loaded copies of ``base`` behind
    ``Router.for_query_document``; a base that already has query/document routes keeps its own two
    towers. Tied towers are the plain base model, which :class:`dualsearch.towers.dual_encoder.DualEncoder` uses for
    both sides.

    Example:
        >>> model = build_training_model("default")  # doctest: +SKIP
        >>> router_routes(model)  # doctest: +SKIP
        ['document', 'query']
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Router

    path = resolve_base(base)
    model = load_sentence_transformer(path, device)
    routes = router_routes(model)
    if routes and set(routes) != {QUERY_ROUTE, DOCUMENT_ROUTE}:
        raise ModelError(f"base {base!r} has Router routes {routes}; expected 'query' and 'document' or a plain model")
    if routes and tied:
        raise ModelError(f"base {base!r} already has separate query/document towers; tied training needs a plain model")
    if not routes and not tied:
        second = load_sentence_transformer(path, device)  # a second load: its own weights, never shared
        router = Router.for_query_document(query_modules=list(model), document_modules=list(second))
        model = SentenceTransformer(modules=[router], device=device)
    set_max_lengths(model, max_query_length, max_document_length)
    use_similarity(model, similarity)
    logger.info("towers from %s: %s", base, "tied (one shared model)" if tied else "separate query/document weights")
    return model


def use_similarity(model, similarity: str) -> None:
    """Train ``model`` to compare vectors by ``similarity``, recorded where sentence-transformers saves it
    (``similarity_fn_name``). Dot product and Euclidean distance use a vector's length, so a tower's
    final ``Normalize`` (all-MiniLM-L6-v2 ends in one) is removed from each tower; the weights are
    untouched (``Normalize`` has none), so interpolating with the base still pairs every parameter."""
    from sentence_transformers.sentence_transformer.modules import Normalize

    model.similarity_fn_name = similarity
    if similarity == "cosine":
        return
    towers = tower_modules(model)
    for tower in towers.values() if towers is not None else [model]:
        while len(tower) and isinstance(tower[len(tower) - 1], Normalize):
            del tower[len(tower) - 1]


def set_max_lengths(model, max_query_length: int, max_document_length: int | None) -> None:
    """Truncation per tower; a tied model has one length for both (queries are short anyway).
    ``max_document_length=None`` keeps the document tower's current length."""
    towers = tower_modules(model)
    if towers is None:
        if max_document_length is not None:
            model.max_seq_length = max_document_length
        return
    towers[QUERY_ROUTE][0].max_seq_length = max_query_length
    if max_document_length is not None:
        towers[DOCUMENT_ROUTE][0].max_seq_length = max_document_length


def document_length(model) -> int:
    """The document tower's truncation in tokens."""
    towers = tower_modules(model)
    return int(model.max_seq_length if towers is None else towers[DOCUMENT_ROUTE][0].max_seq_length)


def freeze_document_tower(model) -> None:
    """Stop training the document tower: the optimizer only takes parameters that need a gradient, so
    its weights (and its hash, and every vector it encoded into an index) stay bit-equal."""
    towers = tower_modules(model)
    if towers is None:
        raise ModelError("a tied model has one tower: it cannot train the query side alone")
    for parameter in towers[DOCUMENT_ROUTE].parameters():
        parameter.requires_grad_(False)


def tower_modules(model) -> dict[str, list] | None:
    """The Router's route -> modules, or None for a plain (tied) model."""
    from sentence_transformers.sentence_transformer.modules import Router

    for module in model:
        if isinstance(module, Router):
            return dict(module.sub_modules)
    return None
