"""FAISS index construction and search, arrays in and arrays out.

Stateless helpers. Three traps of FAISS are handled here once:
- an IVF index trained with more lists than the data supports raises a C++ error, so the number of
  lists is planned from the corpus size and a too-large request falls back with a warning;
- ``nprobe`` defaults to 1 inside FAISS, so every search passes it explicitly;
- asking for more hits than exist pads with id -1, which callers drop (:func:`search_vectors`).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

import faiss
import numpy as np

from dualsearch.defaults import MAX_NPROBE, NPROBE_TARGET
from dualsearch.errors import IndexBuildError, InvalidInputError, SearchFailedError
from dualsearch.towers.similarity import DEFAULT_SIMILARITY, faiss_metric

logger = logging.getLogger(__name__)

DEFAULT_FACTORY = "IVF,Flat"  # the number of lists is filled in from the corpus size
MIN_POINTS_PER_LIST = 39  # FAISS warns below this many training points per centroid
# k-means sample per list. FAISS caps at 256 and warns below 39; 64 keeps training 4,000 lists on a
# 1M-vector corpus to minutes on 2 cores (bench/scale.py measures what it costs in overlap).
TRAINING_POINTS_PER_LIST = 64
DEFAULT_HNSW_EF_SEARCH = 128
_IVF = re.compile(r"^(?P<prefix>.*?\b)?IVF(?P<nlist>\d*)(?P<rest>(_HNSW\d+)?,.*)$")


@dataclass(frozen=True)
class IndexPlan:
    factory: str  # the exact FAISS factory string built
    nlist: int  # 0 when the index has no inverted lists


def derived_nlist(count: int) -> int:
    """Lists for ``count`` vectors: about 4·sqrt(n) (FAISS's guideline is 4-16·sqrt(n)), capped so
    each list gets at least 39 training points, and at least 1.

    Example:
        >>> derived_nlist(5183), derived_nlist(1_000_000), derived_nlist(30)
        (132, 4000, 1)
    """
    return max(1, min(round(4 * math.sqrt(count)), count // MIN_POINTS_PER_LIST))


def plan_index(factory: str | None, count: int) -> IndexPlan:
    """Turn a requested factory string into the one to build for ``count`` vectors.

    ``IVF,Flat`` (no number) takes the derived number of lists; an explicit ``IVF4096,Flat`` larger
    than ``count`` supports is reduced to it with a warning. Indexes without ids of their own
    (Flat, HNSW, ...) are wrapped in ``IDMap`` so documents keep their row ids.
    """
    factory = (factory or DEFAULT_FACTORY).replace(" ", "")
    if not factory:
        raise InvalidInputError("empty index factory string")
    if count < 1:
        raise IndexBuildError("cannot build an index over zero documents")
    match = _IVF.match(factory)
    if match is None:
        return IndexPlan(factory if factory.startswith("IDMap") else f"IDMap,{factory}", 0)
    most = max(1, count // MIN_POINTS_PER_LIST)
    asked = int(match["nlist"]) if match["nlist"] else derived_nlist(count)
    nlist = min(asked, most)
    if nlist < asked:
        logger.warning(
            "%d documents are too few for %d inverted lists (each needs about %d training points); using %d",
            count,
            asked,
            MIN_POINTS_PER_LIST,
            nlist,
        )
    return IndexPlan(f"{match['prefix'] or ''}IVF{nlist}{match['rest']}", nlist)


def ivf_part(index: faiss.Index):
    """The IVF layer of ``index`` (through any wrappers), or None."""
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def train_index(
    plan: IndexPlan, dimension: int, sample: np.ndarray, seed: int = 0, similarity: str = DEFAULT_SIMILARITY
) -> faiss.Index:
    """Create the index of ``plan`` for the towers' ``similarity`` (inner product, or L2 for Euclidean)
    and train it on ``sample`` (n, d) float32 (seeded k-means)."""
    try:
        index = faiss.index_factory(dimension, plan.factory, faiss_metric(similarity))
    except RuntimeError as error:
        raise IndexBuildError(f"FAISS cannot build {plan.factory!r}: {_faiss_message(error)}") from None
    ivf = ivf_part(index)
    if ivf is not None:
        ivf.cp.seed = seed
        ivf.cp.min_points_per_centroid = 1  # plan_index already sized nlist; do not let FAISS warn twice
    if not index.is_trained:
        try:
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
        except RuntimeError as error:
            raise IndexBuildError(
                f"FAISS cannot train {plan.factory!r} on {len(sample)} vectors: {_faiss_message(error)}. "
                "Use fewer lists or codes, or 'Flat' for a small corpus"
            ) from None
    return index


def training_sample(count: int, nlist: int, seed: int = 0) -> np.ndarray:
    """Sorted row positions (seeded) to train on: all rows, or 64 per list (at least 10,000) when
    there are more."""
    limit = max(nlist, 1) * TRAINING_POINTS_PER_LIST
    limit = max(limit, 10_000)  # quantisers (SQ, PQ) want a decent sample even with few lists
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=limit, replace=False))


def add_vectors(index: faiss.Index, vectors: np.ndarray, row_ids: np.ndarray) -> None:
    """Add (n, d) float32 ``vectors`` under int64 ``row_ids``."""
    try:
        index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(row_ids, dtype=np.int64)
        )
    except RuntimeError as error:
        raise IndexBuildError(f"FAISS refused to add vectors: {_faiss_message(error)}") from None


def search_parameters(index: faiss.Index, nprobe: int | None, k: int, selector: faiss.IDSelector | None = None):
    """Per-call parameters, so FAISS's default nprobe of 1 never applies by accident.

    For HNSW indexes the same effort knob sets ``efSearch`` (default 128, at least ``k``).
    ``selector`` restricts the search to some ids (a metadata filter). An ``nprobe`` beyond
    :data:`~dualsearch.defaults.MAX_NPROBE` is refused (FAISS would overflow its C int).
    """
    if nprobe is not None and not 1 <= nprobe <= MAX_NPROBE:
        raise InvalidInputError(f"nprobe must be a whole number between 1 and {MAX_NPROBE:,}, got {nprobe}")
    ivf = ivf_part(index)
    if ivf is not None:
        return faiss.SearchParametersIVF(nprobe=max(1, min(nprobe or 1, ivf.nlist)), sel=selector)
    if "HNSW" in type(faiss.downcast_index(getattr(index, "index", index))).__name__:
        return faiss.SearchParametersHNSW(efSearch=max(k, nprobe or DEFAULT_HNSW_EF_SEARCH), sel=selector)
    return faiss.SearchParameters(sel=selector) if selector is not None else None


def coarse_lists(index: faiss.Index, queries: np.ndarray, nprobe: int | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Each query's ``nprobe`` nearest inverted lists by ``index``'s quantizer, (distances, lists), to
    search every index that shares the quantizer (a version's segments) without finding them again
    (:func:`search_vectors`'s ``lists``); None when ``index`` is not itself an IVF index."""
    if not isinstance(index, faiss.IndexIVF):
        return None
    probes = max(1, min(nprobe or 1, index.nlist))
    return index.quantizer.search(np.ascontiguousarray(queries, dtype=np.float32), probes)


def same_quantizer(first: faiss.Index, other: faiss.Index) -> bool:
    """Whether two IVF indexes have the same centroids (then :func:`coarse_lists` serves both)."""
    if not (isinstance(first, faiss.IndexIVF) and isinstance(other, faiss.IndexIVF)) or first.nlist != other.nlist:
        return False
    if type(first) is not type(other) or first.metric_type != other.metric_type:
        return False
    centroids = first.quantizer.reconstruct_n(0, first.nlist)
    return bool(np.array_equal(centroids, other.quantizer.reconstruct_n(0, other.nlist)))


def _search_preassigned(index: faiss.IndexIVF, queries: np.ndarray, k: int, lists, params) -> tuple:
    """``index.search`` with the lists already found; FAISS's Python wrapper of it takes no parameters
    (the selector of live rows), its C++ function does. ``params.nprobe`` is the lists' width."""
    distances, assigned = (np.ascontiguousarray(part) for part in lists)
    x = np.ascontiguousarray(queries, dtype=np.float32)
    scores, ids = np.empty((len(x), k), np.float32), np.empty((len(x), k), np.int64)
    assigned, distances = assigned.astype(np.int64, copy=False), distances.astype(np.float32, copy=False)
    if assigned.shape != (len(x), params.nprobe):
        raise ValueError(f"lists of shape {assigned.shape} for {len(x)} queries and nprobe {params.nprobe}")
    index.search_preassigned_c(
        len(x),
        faiss.swig_ptr(x),
        k,
        faiss.swig_ptr(assigned),
        faiss.swig_ptr(distances),
        faiss.swig_ptr(scores),
        faiss.swig_ptr(ids),
        False,
        params,
    )
    return scores, ids


def search_vectors(
    index: faiss.Index,
    queries: np.ndarray,
    k: int,
    nprobe: int | None,
    selector: faiss.IDSelector | None = None,
    lists: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` search of (m, d) ``queries``: scores (m, k') and ids (m, k'), k' = min(k, ntotal).
    Scores are higher-is-better whatever the metric: an L2 index's distances come back negated.
    ``lists``: the queries' lists to visit, found by :func:`coarse_lists` on an index with the same
    centroids (the same results as finding them here).

    Rows can still hold -1 ids (an IVF search that visits fewer than k vectors, or a ``selector``
    that lets fewer through); callers drop them.
    """
    k = min(k, index.ntotal)
    if k < 1:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    params = search_parameters(index, nprobe, k, selector)
    try:
        if lists is not None:
            scores, ids = _search_preassigned(index, queries, k, lists, params)
        else:
            scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
    except RuntimeError as error:
        raise SearchFailedError(f"FAISS search failed: {_faiss_message(error)}") from None
    return (-scores if index.metric_type == faiss.METRIC_L2 else scores), ids


def overlap_at_k(approximate_ids: np.ndarray, exact_ids: np.ndarray, k: int) -> float:
    """Mean fraction of the exact top-k that the approximate top-k also finds (ids -1 ignored)."""
    shares = []
    for found, truth in zip(approximate_ids[:, :k], exact_ids[:, :k]):
        truth = set(truth[truth >= 0].tolist())
        if truth:
            shares.append(len(truth & set(found.tolist())) / len(truth))
    return float(np.mean(shares)) if shares else 1.0


def nprobe_grid(nlist: int) -> list[int]:
    """Candidate nprobe values: 1, 2, 3, 4, 6, 8, 12, 16, 24, ... up to ``nlist``.

    Example:
        >>> nprobe_grid(40)
        [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 40]
    """
    grid, power = [], 1
    while power < nlist:
        grid += [power] + ([power * 3 // 2] if power >= 2 else [])
        power *= 2
    return sorted({value for value in grid if value < nlist} | {nlist})


def calibrate_nprobe(
    index: faiss.Index, probes: np.ndarray, exact_ids: np.ndarray, target: float = NPROBE_TARGET, k: int = 10
) -> int:
    """Smallest nprobe of :func:`nprobe_grid` whose overlap@k with exact search reaches ``target``.

    ``probes`` (m, d) are sample queries and ``exact_ids`` (m, k) their exact top-k. Returns 0 for an
    index without inverted lists.
    """
    ivf = ivf_part(index)
    if ivf is None:
        return 0
    for nprobe in nprobe_grid(ivf.nlist):
        _, found = search_vectors(index, probes, k, nprobe)
        if overlap_at_k(found, exact_ids, k) >= target:
            return nprobe
    return ivf.nlist


def _faiss_message(error: RuntimeError) -> str:
    """FAISS's C++ messages carry a file/line trace; keep the sentence that explains."""
    text = str(error)
    for line in text.splitlines():
        if "Error" in line and "'" in line:
            return line.split("failed:", 1)[-1].strip() or text
    return text.splitlines()[0] if text else "unknown FAISS error"
