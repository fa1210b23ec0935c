"""One machine at scale: an IVF index of 1,000,000 synthetic 384-dimensional vectors.

    python -m bench.scale [--count 1000000] [--factory IVF,Flat]

Synthetic vectors stand in for the document tower: a seeded random projection of a 32-dimensional
Gaussian into 384 dimensions plus isotropic noise, L2-normalised. Like embeddings, they vary
continuously along a few dozen directions, so neighbourhoods straddle IVF cells (uniform random
vectors on the sphere are nearly orthogonal and make every ANN index look bad; well-separated
clusters make every IVF index look perfect). They are written to a file and
memory-mapped, as the indexer does, then indexed by the same code (dualsearch.index.ann_build.index_vectors).
Reports build time, peak memory, and per-query latency and overlap@10 against exact search at
several nprobe values. Writes results/scale.json.
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
from pathlib import Path

import faiss
import numpy as np

from bench.common import percentile_ms, timed, write_result

logger = logging.getLogger(__name__)
DIMENSION, LATENT_DIMENSION, NOISE = 384, 32, 0.5


def synthetic_vectors(path: Path, count: int, seed: int = 0, block: int = 100_000) -> np.ndarray:
    """Write ``count`` clustered unit vectors to ``path`` block by block; return them memory-mapped."""
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((LATENT_DIMENSION, DIMENSION)).astype(np.float32) / np.sqrt(LATENT_DIMENSION)
    with path.open("wb") as handle:
        for start in range(0, count, block):
            size = min(block, count - start)
            latent = rng.standard_normal((size, LATENT_DIMENSION), np.float32)
            vectors = latent @ projection + NOISE * rng.standard_normal((size, DIMENSION), np.float32) / np.sqrt(
                DIMENSION
            ) * np.sqrt(LATENT_DIMENSION)
            handle.write((vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32).tobytes())
    return np.memmap(path, dtype=np.float32, mode="r").reshape(count, DIMENSION)


def queries_like(vectors: np.ndarray, count: int, seed: int = 1, noise: float = 0.5) -> np.ndarray:
    """Queries near the data but not on it: a stored unit vector plus noise of norm about ``noise``."""
    rng = np.random.default_rng(seed)
    picked = np.asarray(vectors[np.sort(rng.choice(len(vectors), count, replace=False))])
    noisy = picked + noise * rng.standard_normal(picked.shape).astype(np.float32) / np.sqrt(DIMENSION)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--factory", default="IVF,Flat", help="FAISS factory (default: IVF with derived lists)")
    parser.add_argument("--queries", type=int, default=1_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from dualsearch.index.ann import overlap_at_k, search_vectors
    from dualsearch.index.ann_build import index_vectors
    from dualsearch.index.config import IndexConfig

    with tempfile.TemporaryDirectory(prefix="dualsearch-scale-") as work:
        vectors, generate_seconds = timed(lambda: synthetic_vectors(Path(work) / "vectors.f32", args.count))
        before_build = peak_rss_mib()
        (index, plan, default_nprobe), build_seconds = timed(
            lambda: index_vectors(vectors, IndexConfig(factory=args.factory))
        )
        after_build = peak_rss_mib()
        queries = queries_like(vectors, args.queries)
        (_, exact), exact_seconds = timed(
            lambda: faiss.knn(queries, np.asarray(vectors), 10, metric=faiss.METRIC_INNER_PRODUCT)
        )
        curve = []
        for nprobe in sorted({1, 4, 16, 32, 64, 128, 256, 512, default_nprobe} - {0}):
            times = [
                timed(lambda: search_vectors(index, queries[row : row + 1], 10, nprobe))[1]
                for row in range(len(queries))
            ]
            _, found = search_vectors(index, queries, 10, nprobe)
            curve.append(
                {
                    "nprobe": nprobe,
                    "overlap@10": round(overlap_at_k(found, exact, 10), 4),
                    "p50_ms": round(percentile_ms(times, 50), 3),
                    "p95_ms": round(percentile_ms(times, 95), 3),
                    "queries_per_second_single": round(len(times) / sum(times), 1),
                }
            )
            logger.info("nprobe %d: %s", nprobe, curve[-1])
    result = {
        "vectors": args.count,
        "dimension": DIMENSION,
        "data": f"random projection of a {LATENT_DIMENSION}-d Gaussian plus noise {NOISE}, unit length",
        "factory": plan.factory,
        "nlist": plan.nlist,
        "default_nprobe": default_nprobe,
        "generate_seconds": round(generate_seconds, 1),
        "build_seconds": round(build_seconds, 1),
        "peak_rss_mib": {"before_build": round(before_build), "after_build": round(after_build)},
        "index_bytes_estimate": int(index.ntotal) * DIMENSION * 4,
        "exact_search_ms_per_query_batched": round(1000 * exact_seconds / len(queries), 2),
        "curve": curve,
    }
    print(f"wrote {write_result('scale', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
