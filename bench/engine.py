"""Engine benchmark on SciFact: encoding speed, index build time, query latency, IVF overlap@10.

    python -m bench.engine [--data ../shared/data] [--index-dir /tmp/dualsearch-bench/scifact]

Writes results/engine.json. Everything is measured in one run on one machine, so ratios (IVF
against exact, faiss alone against end to end) compare like with like; absolute times carry the
machine they came from.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.common import DEFAULT_DATA, percentile_ms, timed, write_result

logger = logging.getLogger(__name__)
NPROBES = (1, 2, 4, 8, 16, 32, 64)


def build(corpus_dir: Path, index_dir: Path, encoder) -> dict:
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.write.build import build_index

    report = build_index(read_corpus(corpus_dir), index_dir, encoder, corpus_name=str(corpus_dir), show_progress=True)
    return {
        "documents": report.document_count,
        "factory": report.factory,
        "nlist": report.nlist,
        "default_nprobe": report.default_nprobe,
        "encode_seconds": round(report.encode_seconds, 2),
        "documents_per_second": round(report.document_count / report.encode_seconds, 1),
        "index_build_seconds": round(report.index_seconds, 3),
    }


def latency(searcher, queries: list[str], nprobe: int | None) -> dict:
    """Per-query wall time, one query at a time: end to end (encode, search, fetch) and faiss alone."""
    searcher.search(queries[0])  # warm-up: first calls allocate
    end_to_end, faiss_alone = [], []
    for query in queries:
        end_to_end.append(timed(lambda: searcher.search(query, k=10, nprobe=nprobe))[1])
    vectors = searcher.encoder.encode_queries(queries)
    for row in range(len(vectors)):
        faiss_alone.append(timed(lambda: searcher.search_vectors(vectors[row : row + 1], 10, nprobe))[1])
    return {
        "queries": len(queries),
        "end_to_end_ms": {
            "p50": round(percentile_ms(end_to_end, 50), 2),
            "p95": round(percentile_ms(end_to_end, 95), 2),
        },
        "faiss_ms": {"p50": round(percentile_ms(faiss_alone, 50), 3), "p95": round(percentile_ms(faiss_alone, 95), 3)},
    }


def exact_latency(searcher, queries: list[str]) -> dict:
    """End-to-end latency of brute-force search over the stored vectors, for comparison."""
    times = [timed(lambda: searcher.search(query, exact=True))[1] for query in queries]
    return {"end_to_end_ms": {"p50": round(percentile_ms(times, 50), 2), "p95": round(percentile_ms(times, 95), 2)}}


def overlap_curve(searcher, queries: list[str]) -> list[dict]:
    from dualsearch.index.ann import overlap_at_k

    vectors = searcher.encoder.encode_queries(queries)
    _, exact = searcher.search_vectors(vectors, 10, exact=True)
    nlist = searcher.manifest.nlist
    curve = []
    for nprobe in sorted({p for p in NPROBES if p <= nlist} | {searcher.manifest.default_nprobe, nlist}):
        (_, found), seconds = timed(lambda: searcher.search_vectors(vectors, 10, nprobe))
        curve.append(
            {
                "nprobe": nprobe,
                "overlap@10": round(overlap_at_k(found, exact, 10), 4),
                "batch_queries_per_second": round(len(vectors) / seconds, 1),
            }
        )
    return curve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding scifact/ (BEIR layout)")
    parser.add_argument("--index-dir", type=Path, default=Path("/tmp/dualsearch-bench/scifact"))
    parser.add_argument("--rebuild", action="store_true", help="rebuild even if the index directory exists")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's choice). On a shared machine one thread "
        "avoids stalls at the sync points of a one-query forward pass",
    )
    args = parser.parse_args(argv)
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from dualsearch.corpora.beir import read_queries
    from dualsearch.index.layout import is_index_dir
    from dualsearch.read.searcher import Searcher
    from dualsearch.towers.dual_encoder import DualEncoder

    scifact = args.data / "scifact"
    encoder = DualEncoder.load()
    build_stats = None
    if args.rebuild or not is_index_dir(args.index_dir):
        build_stats = build(scifact, args.index_dir, encoder)
    searcher = Searcher.open(args.index_dir, encoder=encoder)
    queries = list(read_queries(scifact).values())  # texts only; metadata is never read
    result = {
        "collection": "scifact",
        "torch_threads": torch.get_num_threads(),
        "build": build_stats or "reused an existing index (run with --rebuild to time it)",
        "index": {
            "factory": searcher.manifest.factory,
            "nlist": searcher.manifest.nlist,
            "default_nprobe": searcher.manifest.default_nprobe,
            "documents": len(searcher),
        },
        "latency_default_nprobe": latency(searcher, queries[:300], None),
        "latency_exact": exact_latency(searcher, queries[:300]),
        "overlap_vs_exact": overlap_curve(searcher, queries),
    }
    path = write_result("engine", result)
    print(f"wrote {path}")
    default_nprobe = searcher.manifest.default_nprobe
    overlap = next(c["overlap@10"] for c in result["overlap_vs_exact"] if c["nprobe"] == default_nprobe)
    print(
        f"default nprobe {default_nprobe}: overlap@10 {overlap}, "
        f"end-to-end p50 {result['latency_default_nprobe']['end_to_end_ms']['p50']} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
