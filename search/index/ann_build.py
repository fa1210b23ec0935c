"""Fill a FAISS index from a version's vectors and calibrate its default ``nprobe``.

Arrays in, index out; the version's files are handled by :mod:`dualsearch.write.version_writer`.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from dualsearch.index import ann, layout, ondisk
from dualsearch.index.config import IndexConfig
from dualsearch.index.store import DocumentStoreReader
from dualsearch.towers.contract import Encoder
from dualsearch.towers.similarity import DEFAULT_SIMILARITY, exact_knn

ADD_BLOCK = 65_536  # vectors read back from disk per add_with_ids call
PSEUDO_QUERY_WORDS = 12


def index_vectors(
    vectors: np.ndarray,
    config: IndexConfig,
    trained: faiss.Index | None = None,
    factory: str | None = None,
    probes: np.ndarray | None = None,
    on_disk_dir: Path | None = None,
    similarity: str = DEFAULT_SIMILARITY,
    calibrate: bool = True,
) -> tuple[faiss.Index, ann.IndexPlan, int]:
    """Fill a FAISS index with (n, d) ``vectors`` under row ids 0..n-1; returns it, its plan and
    the calibrated default nprobe. ``trained`` (an emptied, already trained index) skips training.
    ``probes`` (m, d) are sample queries for calibration (default: sampled document vectors).
    ``on_disk_dir``: keep the inverted lists in a file there, added shard by shard (:mod:`dualsearch.index.ondisk`).
    ``similarity``: the towers' (:mod:`dualsearch.towers.similarity`), which sets the index's metric.
    ``calibrate=False`` skips the calibration (a small segment joining others keeps their nprobe): 0.

    Example:
        >>> vectors = np.random.default_rng(0).standard_normal((400, 8)).astype(np.float32)
        >>> index, plan, nprobe = index_vectors(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), IndexConfig())
        >>> index.ntotal, plan.factory, 1 <= nprobe <= plan.nlist
        (400, 'IVF10,Flat', True)
    """
    count, dimension = vectors.shape
    if trained is not None:
        ivf = ann.ivf_part(trained)
        index, plan = trained, ann.IndexPlan(factory or "", ivf.nlist if ivf is not None else 0)
    else:
        plan = ann.plan_index(config.factory if factory is None else factory, count)
        sample = np.asarray(vectors[ann.training_sample(count, plan.nlist, config.seed)])
        index = ann.train_index(plan, dimension, sample, config.seed, similarity)
    if on_disk_dir is not None:
        index = ondisk.add_in_shards(index, vectors, on_disk_dir)
    else:
        for start in range(0, count, ADD_BLOCK):
            block = np.asarray(vectors[start : start + ADD_BLOCK])
            ann.add_vectors(index, block, np.arange(start, start + len(block)))
    if ann.ivf_part(index) is None or not calibrate:
        return index, plan, 0
    if probes is None:
        probes = np.asarray(vectors[calibration_rows(count, config)])
    _, exact_ids = exact_knn(probes, np.asarray(vectors), min(10, count), similarity)
    return index, plan, ann.calibrate_nprobe(index, probes, exact_ids, config.nprobe_target)


def calibration_rows(count: int, config: IndexConfig) -> np.ndarray:
    """Sorted, seeded row positions of the documents whose opening words calibrate nprobe."""
    rng = np.random.default_rng(config.seed + 1)
    return np.sort(rng.choice(count, min(config.calibration_queries, count), replace=False))


def pseudo_queries(build_dir: Path, encoder: Encoder, count: int, config: IndexConfig) -> np.ndarray:
    """Query-tower vectors of the opening words of sampled documents: (m, d) float32."""
    store = DocumentStoreReader(build_dir / layout.STORE_FILE)
    try:
        documents = store.fetch(calibration_rows(count, config).tolist())
    finally:
        store.close()
    texts = [" ".join(d.text.split()[:PSEUDO_QUERY_WORDS]) for _, d in sorted(documents.items())]
    return encoder.encode_queries(texts)
