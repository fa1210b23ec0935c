"""Encoding throughput of the towers on this CPU, and what each stage of one query costs.

    python -m bench.encoding [--data ../shared/data] [--batch-sizes 1 8 32 128] [--lengths 32 128 256]

1. Throughput: SciFact documents (``title + " " + text``) and SciFact query texts per second through
   the engine's own path (``DualEncoder.encode_documents`` / ``encode_queries``, L2-normalised), for
   each batch size and each maximum sequence length (``model.max_seq_length``; longer texts are
   truncated, a batch is padded to its longest text). One warm-up batch precedes each timing.
2. Stages of a query, one query at a time over ``--stage-queries`` SciFact query texts, searching the
   default towers' IVF index at its calibrated nprobe: tokenise (``model.preprocess``), encode (the
   query tower's forward pass and normalisation), FAISS search, fetch the 10 documents from the
   SQLite store; and ``Searcher.search`` end to end for comparison.

Query metadata is never read (texts only). Writes results/encoding.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import time
from pathlib import Path

import numpy as np

from bench.common import DEFAULT_DATA, percentile_ms, timed, write_result

logger = logging.getLogger(__name__)
K = 10
STAGES = ("tokenize", "encode", "faiss_search", "fetch")


def length_stats(lengths: list[int]) -> dict:
    """Median, p95 and max of token counts.

    Example:
        >>> length_stats([10, 20, 30])
        {'median': 20.0, 'p95': 29.0, 'max': 30}
    """
    return {
        "median": float(np.median(lengths)),
        "p95": round(float(np.percentile(lengths, 95)), 1),
        "max": int(max(lengths)),
    }


def token_lengths(model, texts: list[str]) -> list[int]:
    """Untruncated token counts (special tokens included) of ``texts``."""
    return [
        len(ids)
        for ids in model.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    ]


def throughput(encoder, side: str, texts: list[str], batch_size: int, max_length: int) -> dict:
    """Texts per second encoding ``texts`` on one ``side`` ("documents" or "queries")."""
    encode = encoder.encode_documents if side == "documents" else encoder.encode_queries
    saved = (encoder.batch_size, encoder.model.max_seq_length)
    encoder.batch_size, encoder.model.max_seq_length = batch_size, max_length
    try:
        encode(texts[:batch_size])  # warm-up
        _, seconds = timed(lambda: encode(texts))
    finally:
        encoder.batch_size, encoder.model.max_seq_length = saved
    return {
        "side": side,
        "batch_size": batch_size,
        "max_seq_length": max_length,
        "texts": len(texts),
        "seconds": round(seconds, 3),
        "texts_per_second": round(len(texts) / seconds, 1),
    }


def staged_query(searcher, text: str) -> tuple[dict[str, float], np.ndarray]:
    """Answer one query stage by stage; returns each stage's wall seconds and the query vector (1, d)."""
    import torch

    model = searcher.encoder.model
    prompt = (model.prompts or {}).get("query") or None
    features, tokenize = timed(lambda: model.preprocess([text], prompt=prompt, task="query"))

    def forward() -> np.ndarray:
        with torch.inference_mode():
            embedding = model(features, task="query")["sentence_embedding"]
            embedding = torch.nn.functional.normalize(embedding, p=2, dim=1)
        return embedding.numpy().astype(np.float32)  # (1, d)

    vector, encode = timed(forward)
    (_, row_ids), search = timed(lambda: searcher.search_vectors(vector, K))
    _, fetch = timed(lambda: searcher.store.fetch(int(r) for r in row_ids[0] if r >= 0))
    return {"tokenize": tokenize, "encode": encode, "faiss_search": search, "fetch": fetch}, vector


def stage_costs(searcher, texts: list[str]) -> dict:
    """Median/p95/mean milliseconds of each stage of a query, and of ``Searcher.search`` end to end."""
    staged_query(searcher, texts[0])  # warm-up
    searcher.search(texts[0])
    times: dict[str, list[float]] = {stage: [] for stage in STAGES}
    largest_difference = 0.0
    for text in texts:
        seconds, vector = staged_query(searcher, text)
        for stage in STAGES:
            times[stage].append(seconds[stage])
        reference = searcher.encoder.encode_queries([text])
        largest_difference = max(largest_difference, float(np.abs(vector - reference).max()))
    times["end_to_end"] = [timed(lambda: searcher.search(text, k=K))[1] for text in texts]
    summary = {
        stage: {
            "p50": round(percentile_ms(values, 50), 3),
            "p95": round(percentile_ms(values, 95), 3),
            "mean": round(1000 * float(np.mean(values)), 3),
        }
        for stage, values in times.items()
    }
    return {
        "queries": len(texts),
        "k": K,
        "ms": summary,
        "slowest_stage": max(STAGES, key=lambda stage: summary[stage]["p50"]),
        "staged_vs_encode_queries_max_abs_difference": largest_difference,
        "index": {
            "factory": searcher.manifest.factory,
            "nprobe": searcher.manifest.default_nprobe,
            "documents": len(searcher),
        },
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Writes results/encoding.json.")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding scifact/ (BEIR layout)")
    parser.add_argument(
        "--index-dir",
        type=Path,
        default=Path("/tmp/dualsearch-bench/scifact"),
        help="SciFact index searched in the stage costs (built when missing, as bench.zero_shot does)",
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128, 256], help="max_seq_length values (tokens)")
    parser.add_argument(
        "--documents", type=int, default=512, help="SciFact documents encoded per setting (seeded sample)"
    )
    parser.add_argument("--queries", type=int, default=512, help="SciFact queries encoded per setting")
    parser.add_argument("--stage-queries", type=int, default=300, help="queries timed stage by stage")
    args = parser.parse_args(argv)
    numbers = args.batch_sizes + args.lengths + [args.documents, args.queries, args.stage_queries]
    if min(numbers) < 1:
        parser.error("batch sizes, lengths and counts must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch

    from bench.zero_shot import ensure_index
    from dualsearch.corpora.beir import read_queries
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.read.searcher import Searcher
    from dualsearch.towers.dual_encoder import DualEncoder

    started, load_start = time.perf_counter(), os.getloadavg()
    scifact = args.data / "scifact"
    encoder = DualEncoder.load()
    documents = [d.encoding_text() for d in read_corpus(str(scifact))]
    documents = random.Random(0).sample(documents, min(args.documents, len(documents)))
    queries = list(read_queries(scifact).values())  # texts only; metadata is never read
    rows = []
    for side, texts in (("documents", documents), ("queries", queries[: args.queries])):
        for length in args.lengths:
            for batch_size in args.batch_sizes:
                rows.append(throughput(encoder, side, texts, batch_size, length))
                logger.info("%s", rows[-1])
    built = ensure_index(scifact, args.index_dir, encoder, rebuild=False)
    searcher = Searcher.open(args.index_dir, encoder=encoder)
    stages = stage_costs(searcher, queries[: args.stage_queries])
    stages["index"]["built_now"] = built is not None
    result = {
        "model": encoder.model_name,
        "torch_threads": torch.get_num_threads(),
        "default_max_seq_length": encoder.model.max_seq_length,
        "token_lengths": {
            "documents": length_stats(token_lengths(encoder.model, documents)),
            "queries": length_stats(token_lengths(encoder.model, queries[: args.queries])),
        },
        "throughput": rows,
        "stages": stages,
        "load_average": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in os.getloadavg()]},
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    path = write_result("encoding", result)
    best = max((r for r in rows if r["side"] == "documents"), key=lambda r: r["texts_per_second"])
    print(
        f"documents: best {best['texts_per_second']} docs/s "
        f"(batch {best['batch_size']}, {best['max_seq_length']} tokens)"
    )
    print(
        "query stages p50 ms: "
        + ", ".join(f"{s} {stages['ms'][s]['p50']}" for s in (*STAGES, "end_to_end"))
        + f"; slowest: {stages['slowest_stage']}"
    )
    print(f"wrote {path} in {result['total_seconds']}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
