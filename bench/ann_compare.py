"""ANN index types side by side: the speed each buys and the accuracy it costs.

    python -m bench.ann_compare [--data ../shared/data] [--count 1000000] [--datasets scifact synthetic]

Two datasets. SciFact: the stored document vectors of the default towers' index (built by
``python -m bench.zero_shot`` into /tmp/dualsearch-bench/scifact; built here when missing), queried by
every SciFact query text encoded by the query tower (texts only, query metadata is never read).
Synthetic: ``--count`` 384-d vectors from ``bench.scale.synthetic_vectors`` and 1,000 queries from
``bench.scale.queries_like``.

For Flat, IVF-Flat, IVF-SQ8, IVF-PQ48 (several nprobe each) and HNSW32 (several efSearch), built
through ``dualsearch.index.ann`` with the engine's own planning (lists derived from the data, seeded training
sample): overlap@10 against exact search (``faiss.knn``), queries per second batched (all queries
in one call, median of ``--repeats``) and one query at a time (p50/p95 latency), build time
(train + add), index size (bytes of the serialised index) and the process's anonymous RSS growth
while building. Searches time ``index.search`` with the parameters ``dualsearch.index.ann.search_vectors``
would pass; what building those parameters adds per engine call is recorded apart. Single queries
run on one FAISS thread (see :func:`measure`). Every index of a dataset is measured in one run, so
their ratios compare like with like. Writes results/ann_compare.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from bench.common import DEFAULT_DATA, percentile_ms, timed, write_result
from bench.report_tables import fastest_at

logger = logging.getLogger(__name__)
K = 10
ADD_BLOCK = 65_536
# name -> (factory string given to search.ann.plan_index, the search-effort knob it takes)
INDEX_TYPES = {
    "Flat": ("Flat", None),
    "IVF-Flat": ("IVF,Flat", "nprobe"),
    "IVF-SQ8": ("IVF,SQ8", "nprobe"),
    "IVF-PQ48": ("IVF,PQ48", "nprobe"),
    "HNSW32": ("HNSW32", "efSearch"),
}
EF_SEARCH = (16, 32, 64, 128, 256, 512)
MAX_NPROBE = 1024  # beyond this an IVF over 1M vectors scans a quarter of them per query: slower than Flat


def nprobe_values(nlist: int, cap: int = MAX_NPROBE) -> list[int]:
    """Powers of two below ``nlist`` up to ``cap``, then ``nlist`` itself (every list probed: the
    IVF's exact limit) when it is within ``cap``.

    Example:
        >>> nprobe_values(132), nprobe_values(4000)
        ([1, 2, 4, 8, 16, 32, 64, 128, 132], [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
    """
    values, value = [], 1
    while value < nlist and value <= cap:
        values.append(value)
        value *= 2
    return values + ([nlist] if nlist <= cap else [])


def effort_values(knob: str | None, nlist: int) -> list[int | None]:
    """The search-effort settings to measure for an index whose knob is ``knob``."""
    if knob == "nprobe":
        return nprobe_values(nlist)
    if knob == "efSearch":
        return list(EF_SEARCH)
    return [None]


def anonymous_rss_mib() -> float:
    """Anonymous resident memory of this process (heap, not pages of memory-mapped vector files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def serialized_bytes(index: faiss.Index, work: Path) -> int:
    """Size of the index as faiss writes it to disk (what the engine stores as index.faiss)."""
    path = work / "sized.faiss"
    faiss.write_index(index, str(path))
    size = path.stat().st_size
    path.unlink()
    return size


def build(factory: str, vectors: np.ndarray, seed: int = 0) -> tuple[faiss.Index, dict]:
    """Plan, train and fill one index over (n, d) ``vectors`` (ids 0..n-1); returns it and its timings."""
    from dualsearch.index.ann import add_vectors, plan_index, train_index, training_sample

    count, dimension = vectors.shape
    plan = plan_index(factory, count)
    before = anonymous_rss_mib()
    sample = np.asarray(vectors[training_sample(count, plan.nlist, seed)])  # (s, d) float32
    index, train_seconds = timed(lambda: train_index(plan, dimension, sample, seed))
    sample_size = len(sample)
    sample = None  # free the training sample before adding the vectors
    started = time.perf_counter()
    for start in range(0, count, ADD_BLOCK):
        block = np.asarray(vectors[start : start + ADD_BLOCK])
        add_vectors(index, block, np.arange(start, start + len(block)))
    add_seconds = time.perf_counter() - started
    return index, {
        "factory": plan.factory,
        "nlist": plan.nlist,
        "vectors": count,
        "training_vectors": sample_size,
        "train_seconds": round(train_seconds, 2),
        "add_seconds": round(add_seconds, 2),
        "build_seconds": round(train_seconds + add_seconds, 2),
        "anonymous_rss_growth_mib": round(anonymous_rss_mib() - before, 1),
    }


def parameter_overhead_ms(index: faiss.Index, effort: int | None, calls: int = 200) -> float:
    """Median ms the engine spends per search call building FAISS parameters
    (``dualsearch.index.ann.search_parameters``)."""
    from dualsearch.index.ann import search_parameters

    return round(percentile_ms([timed(lambda: search_parameters(index, effort, K))[1] for _ in range(calls)], 50), 4)


def measure(
    index: faiss.Index,
    queries: np.ndarray,
    exact_ids: np.ndarray,
    effort: int | None,
    single_queries: int,
    repeats: int,
    budget_seconds: float = 20.0,
) -> dict:
    """Overlap@10, batched QPS and single-query latency of ``index`` at one effort setting.

    Times ``index.search`` with parameters built once (see :func:`parameter_overhead_ms` for what the
    engine adds per call). Single queries run on one FAISS thread: FAISS parallelises over queries,
    so one query uses one thread anyway, and an idle second OpenMP thread only adds barrier waits
    when other processes share the cores. Once ``budget_seconds`` are spent, no further batched
    repeat or single query starts (the counts timed are recorded).
    """
    from dualsearch.index.ann import overlap_at_k, search_parameters

    params = search_parameters(index, effort, K)

    def search(rows: np.ndarray) -> np.ndarray:
        return index.search(rows, K, params=params)[1]

    search(queries[:8])  # warm-up: first calls allocate
    batch_times: list[float] = []
    while len(batch_times) < repeats and (not batch_times or sum(batch_times) < budget_seconds):
        found, seconds = timed(lambda: search(queries))
        batch_times.append(seconds)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    single: list[float] = []
    try:
        for row in range(min(single_queries, len(queries))):
            if len(single) >= 20 and sum(single) > budget_seconds:
                break
            single.append(timed(lambda: search(queries[row : row + 1]))[1])
    finally:
        faiss.omp_set_num_threads(threads)
    return {
        "effort": effort,
        "overlap@10": round(overlap_at_k(found, exact_ids, K), 4),
        "batch_queries_per_second": round(len(queries) / statistics.median(batch_times), 1),
        "batch_repeats": len(batch_times),
        "single_queries": len(single),
        "single_queries_per_second": round(len(single) / sum(single), 1),
        "single_p50_ms": round(percentile_ms(single, 50), 3),
        "single_p95_ms": round(percentile_ms(single, 95), 3),
    }


def compare_indexes(
    vectors: np.ndarray,
    queries: np.ndarray,
    kinds: list[str],
    work: Path,
    single_queries: int,
    repeats: int,
    hnsw_vectors: int,
    budget_seconds: float = 20.0,
) -> list[dict]:
    """Build and measure every index kind in ``kinds`` over the same vectors and queries."""
    exact_cache: dict[int, np.ndarray] = {}
    rows = []
    for kind in kinds:
        factory, knob = INDEX_TYPES[kind]
        count = min(len(vectors), hnsw_vectors) if knob == "efSearch" else len(vectors)
        if count not in exact_cache:  # exact top-10 over the vectors this index holds
            (_, exact_cache[count]), seconds = timed(
                lambda: faiss.knn(queries, np.asarray(vectors[:count]), K, metric=faiss.METRIC_INNER_PRODUCT)
            )
            logger.info("exact top-%d of %d queries over %d vectors in %.1fs", K, len(queries), count, seconds)
        logger.info("building %s (%s) over %d vectors", kind, factory, count)
        index, row = build(factory, vectors[:count])
        row = {
            "index": kind,
            "knob": knob,
            **row,
            "index_bytes": serialized_bytes(index, work),
            "engine_parameter_overhead_ms": parameter_overhead_ms(index, effort_values(knob, row["nlist"])[0]),
        }
        logger.info("%s built in %.1fs, %.1f MiB", kind, row["build_seconds"], row["index_bytes"] / 2**20)
        row["runs"] = []
        for effort in effort_values(knob, row["nlist"]):
            row["runs"].append(
                measure(index, queries, exact_cache[count], effort, single_queries, repeats, budget_seconds)
            )
            logger.info("%s %s=%s: %s", kind, knob, effort, row["runs"][-1])
        rows.append(row)
        del index
    return rows


def scifact_dataset(data: Path, index_dir: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """SciFact's stored document vectors (n, d) and its query texts encoded by the query tower (m, d)."""
    from bench.zero_shot import ensure_index
    from dualsearch.corpora.beir import read_queries
    from dualsearch.read.searcher import Searcher
    from dualsearch.towers.dual_encoder import DualEncoder

    encoder = DualEncoder.load()
    built = ensure_index(data / "scifact", index_dir, encoder, rebuild=False)
    with Searcher.open(index_dir, encoder=encoder) as searcher:  # the live documents' passage vectors
        vectors = searcher.vectors[searcher.store.live_passage_rows()]
    texts = list(read_queries(data / "scifact").values())  # texts only; metadata is never read
    queries = encoder.encode_queries(texts)  # (m, d) float32
    source = f"document vectors of {index_dir} ({'built now' if built else 'reused'}), default towers"
    return vectors, queries, source


def run_dataset(name: str, vectors: np.ndarray, queries: np.ndarray, source: str, args, work: Path) -> dict:
    started = time.perf_counter()
    rows = compare_indexes(
        vectors, queries, args.indexes, work, args.single_queries, args.repeats, args.hnsw_vectors, args.budget
    )
    return {
        "name": name,
        "vectors": int(len(vectors)),
        "dimension": int(vectors.shape[1]),
        "queries": int(len(queries)),
        "single_queries": min(args.single_queries, len(queries)),
        "source": source,
        "indexes": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Writes results/ann_compare.json. Heavy: run niced when the machine is shared.",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding scifact/ (BEIR layout)")
    parser.add_argument(
        "--index-dir",
        type=Path,
        default=Path("/tmp/dualsearch-bench/scifact"),
        help="the SciFact index whose stored vectors are compared (built when missing)",
    )
    parser.add_argument("--datasets", nargs="+", default=["scifact", "synthetic"], choices=["scifact", "synthetic"])
    parser.add_argument(
        "--indexes",
        nargs="+",
        default=list(INDEX_TYPES),
        choices=list(INDEX_TYPES),
        help="index types to compare (default: all)",
    )
    parser.add_argument("--count", type=int, default=1_000_000, help="synthetic vectors (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=1_000, help="synthetic queries (default 1,000)")
    parser.add_argument("--single-queries", type=int, default=300, help="queries timed one at a time per setting")
    parser.add_argument("--repeats", type=int, default=3, help="batched searches per setting (median is kept)")
    parser.add_argument(
        "--budget",
        type=float,
        default=20.0,
        help="seconds per setting for batched repeats and for single queries; past it no new one starts",
    )
    parser.add_argument(
        "--hnsw-vectors",
        type=int,
        default=1_000_000,
        help="cap on the vectors HNSW indexes (its build is the slowest); exact ground truth follows the cap",
    )
    args = parser.parse_args(argv)
    for flag in ("count", "queries", "single_queries", "repeats", "hnsw_vectors", "budget"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from bench.scale import queries_like, synthetic_vectors

    started, load_start = time.perf_counter(), os.getloadavg()
    datasets = []
    with tempfile.TemporaryDirectory(prefix="dualsearch-ann-") as work:
        work = Path(work)
        if "scifact" in args.datasets:
            vectors, queries, source = scifact_dataset(args.data, args.index_dir)
            datasets.append(run_dataset("scifact", vectors, queries, source, args, work))
        if "synthetic" in args.datasets:
            vectors = synthetic_vectors(work / "vectors.f32", args.count)
            queries = queries_like(vectors, min(args.queries, args.count))
            source = "bench.scale.synthetic_vectors (seed 0) and queries_like (seed 1)"
            datasets.append(run_dataset(f"synthetic-{args.count // 1000}k", vectors, queries, source, args, work))
            del vectors
    result = {
        "k": K,
        "faiss_threads": {"build_and_batched": faiss.omp_get_max_threads(), "single_query": 1},
        "repeats": args.repeats,
        "budget_seconds": args.budget,
        "max_nprobe": MAX_NPROBE,
        "load_average": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in os.getloadavg()]},
        "exact": "faiss.knn, inner product, over the vectors each index holds",
        "datasets": datasets,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    path = write_result("ann_compare", result)
    for dataset in datasets:
        for row in dataset["indexes"]:
            best = fastest_at(row["runs"], 0.95)
            print(
                f"{dataset['name']} {row['index']}: build {row['build_seconds']}s, "
                f"{row['index_bytes'] / 2**20:.1f} MiB; "
                f"{row['knob'] or 'exact'}={best['effort']}: overlap@10 {best['overlap@10']}, "
                f"{best['batch_queries_per_second']} q/s batched, p50 {best['single_p50_ms']} ms"
            )
    print(f"wrote {path} in {result['total_seconds']}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
