"""Encoding on Ray against encoding in the process, on the same SciFact documents, and a model of where
the driver saturates.

    python -m bench.ray_encoding [--documents 2000] [--work /tmp/dualsearch-bench/ray]

Every run builds an index of the first ``--documents`` SciFact documents with the default towers and
backend (what ``dualsearch index`` uses), each in a process of its own:

- ``local-1`` and ``local-2``: the local executor with 1 and 2 encoder threads;
- ``ray-1`` and ``ray-2``: ``--executor ray`` with 1 and 2 workers of 1 thread each, on a local cluster
  of 2 CPUs; the cluster's start and the actors' loading of the towers are timed apart from the build;
- ``driver``: the same build with an executor that returns random unit vectors at once, which leaves
  everything the driver does itself (reading, hashing, passage planning with the tokenizer, store and
  vectors writes, the FAISS index and the BM25 index).

Ray's overhead is compared at equal cores (ray-1 against local-1, ray-2 against local-2), on the
documents per second of the write phase (reading to vectors file). From ray-1's per-worker rate and
the driver's own cost per document, the model ``rate(N) = min(N * worker rate, 1 / driver cost)``
says where the driver saturates and what 10M and 100M documents of this length would take.
Writes results/ray_encoding.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import DEFAULT_DATA, write_result

logger = logging.getLogger("bench.ray_encoding")
RUNS = {  # name -> (executor, workers or threads)
    "local-1": ("local", 1),
    "local-2": ("local", 2),
    "ray-1": ("ray", 1),
    "ray-2": ("ray", 2),
    "driver": ("instant", 0),
}
CORES_PER_MACHINE = 2  # this machine's; the model scales it to N machines
MACHINES = (1, 4, 16, 64)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/dualsearch-bench/ray"))
    parser.add_argument("--run", choices=list(RUNS), help=argparse.SUPPRESS)  # one child process's job
    return parser.parse_args(argv)


class InstantExecutor:
    """Random unit vectors of the right shape at once: a build that costs only what the driver does."""

    def __init__(self, dimension: int) -> None:
        self.dimension, self.rng = dimension, np.random.default_rng(0)

    def encode(self, items, texts_of):
        for item in items:
            vectors = self.rng.standard_normal((len(texts_of(item)), self.dimension)).astype(np.float32)
            yield item, vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def close(self) -> None:
        pass


def one_run(name: str, corpus: Path, out: Path) -> dict:
    from dualsearch.towers.backends import load_encoder
    from dualsearch.write.build import index_corpus
    from dualsearch.write.executors import LocalExecutor, RayExecutor

    kind, count = RUNS[name]
    encoder = load_encoder()  # default towers and backend; $DUALSEARCH_THREADS is set by the parent
    started = time.perf_counter()
    if kind == "ray":
        import ray

        ray.init(num_cpus=CORES_PER_MACHINE, include_dashboard=False, logging_level=logging.WARNING)
        executor = RayExecutor(encoder, workers=count, threads=1)
        executor.start()  # now, so the actors' start is timed apart from the build
    elif kind == "local":
        executor = LocalExecutor(encoder)
    else:
        executor = InstantExecutor(encoder.dimension)
    start_seconds = time.perf_counter() - started
    try:
        report, _ = index_corpus(corpus, out, encoder, executor=executor)
    finally:
        executor.close()
    from dualsearch.index import layout
    from dualsearch.index.manifest import Manifest

    manifest = Manifest.read(layout.current_version_dir(out))
    return {
        "executor": kind,
        "workers_or_threads": count,
        "start_seconds": round(start_seconds, 2),
        "write_seconds": round(report.encode_seconds, 2),
        "index_seconds": round(report.index_seconds, 2),
        "documents": report.document_count,
        "passages": manifest.passage_count,
        "documents_per_second": round(report.document_count / report.encode_seconds, 2),
    }


def write_corpus(data: Path, count: int, path: Path) -> None:
    with open(data / "scifact" / "corpus.jsonl", encoding="utf-8") as source:
        lines = [line for _, line in zip(range(count), source, strict=False)]
    path.write_text("".join(lines), encoding="utf-8")


def model(runs: dict) -> dict:
    """Throughput against workers, and the cost of 10M and 100M documents of this length."""
    worker_rate = runs["ray-1"]["documents_per_second"]  # one worker, one thread
    driver_cost = runs["driver"]["write_seconds"] / runs["driver"]["documents"]  # seconds per document
    ceiling = 1 / driver_cost
    saturating_workers = ceiling / worker_rate
    table = []
    for machines in MACHINES:
        workers = machines * CORES_PER_MACHINE
        rate = min(workers * worker_rate, ceiling)
        table.append(
            {
                "machines": machines,
                "workers": workers,
                "documents_per_second": round(rate, 1),
                "driver_bound": workers * worker_rate >= ceiling,
                "hours_10M": round(10_000_000 / rate / 3600, 1),
                "hours_100M": round(100_000_000 / rate / 3600, 1),
            }
        )
    return {
        "worker_documents_per_second": worker_rate,
        "driver_seconds_per_document": round(driver_cost, 6),
        "driver_ceiling_documents_per_second": round(ceiling, 1),
        "workers_where_the_driver_saturates": round(saturating_workers, 1),
        "cores_per_machine": CORES_PER_MACHINE,
        "by_machines": table,
        "not_included": "the FAISS index (training and adding; bench.scale measures it on one machine), the "
        "BM25 index and reading the corpus from shared storage",
    }


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    corpus = args.work / "corpus.jsonl"
    if args.run:
        print(json.dumps(one_run(args.run, corpus, args.work / args.run)))
        return 0
    import shutil

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    write_corpus(args.data, args.documents, corpus)
    runs = {}
    for name, (kind, count) in RUNS.items():
        threads = str(count) if kind == "local" else "1" if kind == "ray" else "2"
        env = {**os.environ, "DUALSEARCH_THREADS": threads}
        command = [sys.executable, "-m", "bench.ray_encoding", "--run", name, "--work", str(args.work)]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
        runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
        logger.info("%s: %s", name, runs[name])
    overhead = {
        f"{ray}_vs_{local}": round(1 - runs[ray]["documents_per_second"] / runs[local]["documents_per_second"], 3)
        for ray, local in (("ray-1", "local-1"), ("ray-2", "local-2"))
    }
    result = {
        "documents": args.documents,
        "towers": "default (all-MiniLM-L6-v2 pair), backend onnx-int8",
        "runs": runs,
        "ray_overhead_at_equal_cores": overhead,
        "model": model(runs),
    }
    print(f"wrote {write_result('ray_encoding', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
