"""Reproduce the published zero-shot numbers: default towers on SciFact and NFCorpus test.

    python -m bench.zero_shot [--data ../shared/data] [--work /tmp/dualsearch-bench] [--rebuild]

For each collection: build (or reuse) an index with the default towers (two all-MiniLM-L6-v2
copies), then nDCG@10, Recall@100 and MRR@10 on the test split with exact search and with IVF at
the index's calibrated default nprobe. Published numbers (MTEB, all-MiniLM-L6-v2; see
../shared/data/README.md) are written beside ours. Writes results/zero_shot.json.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.common import DEFAULT_DATA, timed, write_result

logger = logging.getLogger(__name__)
COLLECTIONS = ("scifact", "nfcorpus")
# nDCG@10 on the test splits, from ../shared/data/README.md (MTEB results files; BEIR paper for BM25).
PUBLISHED_NDCG10 = {
    "scifact": {"all-MiniLM-L6-v2 (MTEB)": 0.6451, "BM25 (BEIR paper)": 0.665},
    "nfcorpus": {"all-MiniLM-L6-v2 (MTEB)": 0.3159, "BM25 (BEIR paper)": 0.325},
}


def ensure_index(corpus_dir: Path, index_dir: Path, encoder, rebuild: bool) -> dict | None:
    """Build the index unless a usable one is there; returns build timings when it built."""
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.index.config import IndexConfig
    from dualsearch.index.layout import is_index_dir
    from dualsearch.write.build import build_index

    if is_index_dir(index_dir) and not rebuild:
        return None
    # one passage a document and the towers alone: the setting MTEB publishes (bench.hybrid measures the rest)
    report = build_index(
        read_corpus(corpus_dir),
        index_dir,
        encoder,
        IndexConfig(max_passages=1),
        corpus_name=str(corpus_dir),
        show_progress=True,
    )
    return {
        "documents": report.document_count,
        "encode_seconds": round(report.encode_seconds, 1),
        "index_seconds": round(report.index_seconds, 2),
        "factory": report.factory,
    }


def evaluate_collection(name: str, data: Path, work: Path, encoder, rebuild: bool) -> dict:
    from dualsearch.read.evaluation import evaluate
    from dualsearch.read.searcher import Searcher

    built = ensure_index(data / name, work / name, encoder, rebuild)
    searcher = Searcher.open(work / name, encoder=encoder)
    exact, exact_seconds = timed(lambda: evaluate(searcher, data / name, "test", exact=True, mode="dense"))
    ivf, ivf_seconds = timed(lambda: evaluate(searcher, data / name, "test", mode="dense"))
    published = PUBLISHED_NDCG10[name]["all-MiniLM-L6-v2 (MTEB)"]
    return {
        "build": built or "reused an existing index (run with --rebuild to rebuild)",
        "index": {"factory": searcher.manifest.factory, "default_nprobe": searcher.manifest.default_nprobe},
        "exact": {k: round(v, 4) for k, v in exact.items()},
        "ivf_default_nprobe": {k: round(v, 4) for k, v in ivf.items()},
        "published_ndcg@10": PUBLISHED_NDCG10[name],
        "exact_minus_published_ndcg@10": round(exact["ndcg@10"] - published, 4),
        "ivf_minus_exact_ndcg@10": round(ivf["ndcg@10"] - exact["ndcg@10"], 4),
        "evaluate_seconds": {"exact": round(exact_seconds, 1), "ivf": round(ivf_seconds, 1)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding scifact/ and nfcorpus/")
    parser.add_argument("--work", type=Path, default=Path("/tmp/dualsearch-bench"), help="where indexes are built")
    parser.add_argument("--rebuild", action="store_true", help="rebuild indexes even if present")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from dualsearch.towers.dual_encoder import DualEncoder

    encoder = DualEncoder.load()
    result = {name: evaluate_collection(name, args.data, args.work, encoder, args.rebuild) for name in COLLECTIONS}
    for name, numbers in result.items():
        print(
            f"{name}: exact nDCG@10 {numbers['exact']['ndcg@10']:.4f} "
            f"(published {PUBLISHED_NDCG10[name]['all-MiniLM-L6-v2 (MTEB)']}), "
            f"IVF nprobe {numbers['index']['default_nprobe']} {numbers['ivf_default_nprobe']['ndcg@10']:.4f}"
        )
    print(f"wrote {write_result('zero_shot', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
