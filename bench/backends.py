"""The towers on each backend (PyTorch fp32, ONNX Runtime fp32 and int8, OpenVINO fp32 and int8), in one run.

    python -m bench.backends [--data ../shared/data] [--work /tmp/dualsearch-bench/backends] [--queries 200]
                             [--skip-stdlib]

On SciFact, for each backend against PyTorch fp32:
1. export: seconds to export both towers (once per weights; cached after), and size on disk. The
   calibrated backend (OpenVINO int8) is exported as a user does it, ``dualsearch export --backend
   openvino-int8 --calibration CORPUS``, calibrated on a seeded 300 SciFact documents;
2. load: seconds to load both towers (PyTorch from the packaged checkpoint, ONNX from the export);
3. document encoding: documents per second (``title + " " + text``, cut at the tower's window) at
   batch sizes 8-64, on all cores, through the engine's own ``encode_documents``;
4. quality: an index of SciFact built with the engine's defaults by each backend's document tower
   (its build time is the engine's encode + index seconds, as the manifest records them), then nDCG@10
   on test with exact dense search, for each query backend against each document backend (the mixes
   are what "allowed where measured safe" rests on);
5. one query end to end (tokenise, encode, search, fetch: ``Searcher.search``, k=10, the index's
   default mode, and dense alone) over SciFact test query texts, p50/p95 with one thread and two;
6. the default index (the stdlib corpus, ``make run``) built with PyTorch and with the default backend
   (skip with --skip-stdlib).

Query metadata is never read (texts only). Writes results/backends.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
from pathlib import Path

from bench.common import DEFAULT_DATA, log_phases_only, percentile_ms, timed, write_result

logger = logging.getLogger("bench.backends")
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")
BATCH_SIZES = (8, 16, 32, 64)
THROUGHPUT_DOCUMENTS = 512


def calibrated_towers(work: Path, backend: str) -> Path:
    """Where this run exports a calibrated backend's towers (the cache exports only uncalibrated ones)."""
    return work / f"towers-{backend}"


def export_calibrated(torch_encoder, work: Path, backend: str, corpus_dir: Path) -> None:
    """Export as `dualsearch export` does: the whole corpus read, a seeded sample of it calibrated on."""
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.towers.export import export_towers

    shutil.rmtree(calibrated_towers(work, backend), ignore_errors=True)
    calibration = [document.encoding_text() for document in read_corpus(corpus_dir)]
    export_towers(torch_encoder, calibrated_towers(work, backend), backend, calibration)


def encoder_for(backend: str, work: Path, threads: int | None = None):
    """Both towers on ``backend``; ``threads`` per forward pass (None: the runtime's default, all cores)."""
    import torch

    from dualsearch.towers.backends import load_encoder
    from dualsearch.towers.exported import CALIBRATED_BACKENDS

    torch.set_num_threads(threads or os.cpu_count())
    if threads is None:
        os.environ.pop("DUALSEARCH_THREADS", None)
    else:
        os.environ["DUALSEARCH_THREADS"] = str(threads)
    return load_encoder(str(calibrated_towers(work, backend)) if backend in CALIBRATED_BACKENDS else "default", backend)


def disk_bytes(encoder) -> int:
    """Bytes of the towers' weights on disk: the exported graphs, or PyTorch's fp32 parameters of both towers."""
    if hasattr(encoder, "query_tower"):
        from dualsearch.towers.exported import graph_files

        towers = {encoder.query_tower, encoder.document_tower}
        return sum(
            (tower.directory / name).stat().st_size for tower in towers for name in graph_files(tower.config.backend)
        )
    return sum(tensor.numel() * tensor.element_size() for tensor in encoder.model.state_dict().values())


def document_texts(corpus_dir: Path, count: int) -> list[str]:
    from dualsearch.corpora.sources import read_corpus

    documents = list(read_corpus(corpus_dir))
    random.Random(0).shuffle(documents)
    return [document.encoding_text() for document in documents[:count]]


def query_texts(corpus_dir: Path, split: str = "test") -> list[str]:
    """The texts of the split's judged queries (never their metadata)."""
    judged = set()
    for line in (corpus_dir / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        judged.add(line.split("\t")[0])
    texts = []
    with (corpus_dir / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record["_id"] in judged:
                texts.append(record["text"])
    return texts


def throughput(encoder, texts: list[str]) -> dict:
    rates = {}
    for batch_size in BATCH_SIZES:
        encoder.batch_size = batch_size
        encoder.encode_documents(texts[:batch_size])  # warm-up
        _, seconds = timed(lambda: encoder.encode_documents(texts))
        rates[batch_size] = round(len(texts) / seconds, 1)
    best = max(rates, key=rates.get)
    encoder.batch_size = 32
    return {
        "documents_per_second_by_batch_size": rates,
        "best_batch_size": best,
        "best_documents_per_second": rates[best],
    }


def build_index(corpus_dir: Path, index_dir: Path, encoder, reuse: bool) -> dict:
    """Build the SciFact index (or, with ``reuse``, take one an earlier run of this script built, with
    the build time its manifest recorded then)."""
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.index.layout import current_version_dir, is_index_dir
    from dualsearch.index.manifest import Manifest
    from dualsearch.write.build import build_index as build

    if reuse and is_index_dir(index_dir):
        manifest = Manifest.read(current_version_dir(index_dir))
        if manifest.document_backend == encoder.identity().document_backend:
            seconds = manifest.build["encode_seconds"] + manifest.build["index_seconds"]
            return {"documents": manifest.document_count, "seconds": round(seconds, 1), "reused": True}
    if index_dir.exists():
        shutil.rmtree(index_dir)
    report, seconds = timed(lambda: build(read_corpus(corpus_dir), index_dir, encoder, corpus_name=str(corpus_dir)))
    return {"documents": report.document_count, "seconds": round(seconds, 1), "reused": False}


def ndcg(index_dir: Path, corpus_dir: Path, query_encoder) -> float:
    from dualsearch.read.evaluation import evaluate
    from dualsearch.read.searcher import Searcher

    with Searcher.open(index_dir, encoder=query_encoder) as searcher:
        return round(evaluate(searcher, corpus_dir, "test", exact=True, mode="dense")["ndcg@10"], 4)


def latencies(index_dir: Path, query_encoder, queries: list[str]) -> dict:
    from dualsearch.read.searcher import Searcher

    answer = {}
    with Searcher.open(index_dir, encoder=query_encoder) as searcher:
        for mode in (None, "dense"):
            for text in queries[:10]:  # warm-up
                searcher.search(text, k=10, mode=mode)
            seconds = [timed(lambda: searcher.search(text, k=10, mode=mode))[1] for text in queries]
            name = mode or f"default ({searcher.settings.mode})"
            answer[name] = {
                "p50_ms": round(percentile_ms(seconds, 50), 2),
                "p95_ms": round(percentile_ms(seconds, 95), 2),
            }
    return answer


def stdlib_build(work: Path, backend: str) -> dict:
    from dualsearch.defaults import DEFAULT_CORPUS
    from dualsearch.write.build import index_corpus

    index_dir = work / f"stdlib-{backend}"
    if index_dir.exists():
        shutil.rmtree(index_dir)
    encoder = encoder_for(backend, work)
    report, seconds = timed(lambda: index_corpus(DEFAULT_CORPUS, index_dir, encoder))
    return {"documents": report[0].document_count, "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/dualsearch-bench/backends"))
    parser.add_argument("--queries", type=int, default=200, help="query texts timed one at a time")
    parser.add_argument("--skip-stdlib", action="store_true", help="do not time building the default index")
    parser.add_argument(
        "--reuse-indexes",
        action="store_true",
        help="take the SciFact indexes an earlier run left in --work, with the build times their manifests recorded",
    )
    args = parser.parse_args(argv)
    log_phases_only()
    from dualsearch.towers.backends import DEFAULT_BACKEND, exported_encoder, towers_cache_dir
    from dualsearch.towers.dual_encoder import DualEncoder
    from dualsearch.towers.exported import CALIBRATED_BACKENDS

    corpus_dir = args.data / "scifact"
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict = {"default_backend": DEFAULT_BACKEND, "backends": {}, "ndcg10_exact_dense": {}, "query_latency": {}}

    torch_encoder = DualEncoder.load()
    for backend in BACKENDS[1:]:  # export time: a fresh export, not the cached one
        if backend in CALIBRATED_BACKENDS:  # exported into --work, never into the cache
            _, seconds = timed(lambda: export_calibrated(torch_encoder, args.work, backend, corpus_dir))
        else:
            cached = towers_cache_dir() / f"{backend}-{torch_encoder.identity().weights_sha256[:32]}"
            shutil.rmtree(cached, ignore_errors=True)
            _, seconds = timed(lambda: exported_encoder(torch_encoder, backend))
        results["backends"].setdefault(backend, {})["export_seconds"] = round(seconds, 1)

    texts = document_texts(corpus_dir, THROUGHPUT_DOCUMENTS)
    for backend in BACKENDS:
        logger.info("%s: load, size, document throughput", backend)
        encoder, seconds = timed(lambda: encoder_for(backend, args.work))
        entry = results["backends"].setdefault(backend, {})
        entry.update(load_seconds=round(seconds, 2), weights_mib=round(disk_bytes(encoder) / 2**20, 1))
        entry.update(throughput(encoder, texts))
        logger.info("%s: building the SciFact index", backend)
        entry["scifact_index"] = build_index(corpus_dir, args.work / f"scifact-{backend}", encoder, args.reuse_indexes)
    torch_rate = results["backends"]["torch"]["best_documents_per_second"]
    for entry in results["backends"].values():
        entry["documents_per_second_vs_torch"] = round(entry["best_documents_per_second"] / torch_rate, 2)

    queries = query_texts(corpus_dir)
    for query_backend in BACKENDS:
        encoder = encoder_for(query_backend, args.work)
        results["ndcg10_exact_dense"][query_backend] = {
            document_backend: ndcg(args.work / f"scifact-{document_backend}", corpus_dir, encoder)
            for document_backend in BACKENDS
        }
        logger.info("queries on %s: nDCG@10 %s", query_backend, results["ndcg10_exact_dense"][query_backend])
        for threads in (1, 2):
            encoder = encoder_for(query_backend, args.work, threads)
            timing = latencies(args.work / "scifact-torch", encoder, queries[: args.queries])
            results["query_latency"].setdefault(query_backend, {})[f"{threads}_threads"] = timing
            logger.info("queries on %s, %d threads: %s", query_backend, threads, timing)

    if not args.skip_stdlib:
        results["stdlib_index_build"] = {
            backend: stdlib_build(args.work, backend) for backend in ("torch", DEFAULT_BACKEND)
        }
        logger.info("default index builds: %s", results["stdlib_index_build"])
    results["queries_timed"] = min(args.queries, len(queries))
    results["throughput_documents"] = len(texts)
    path = write_result("backends", results)
    logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
