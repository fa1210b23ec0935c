"""Re-indexing benchmark: incremental cost against a full build, and memory against corpus size.

    python -m bench.reindex [--data ../shared/data] [--skip-memory]

1. SciFact with the default towers: a full build, then a re-index after 1% of the documents
   changed (half edited, half replaced by new ids), timed in the same run. Target: <= 10%.
2. Peak memory (max RSS of a fresh process) of indexing synthetic corpora of 20,000 and 200,000
   short documents with the tests' tiny tower. Target: 200k within 1.5x of 20k.

Writes results/reindex_incremental.json and results/reindex_memory.json (one per part, so either
can be rerun alone).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import DEFAULT_DATA, REPO, write_result

logger = logging.getLogger(__name__)


def changed_copy(corpus: Path, out: Path, fraction: float, seed: int = 0) -> int:
    """Write ``corpus`` to ``out`` with ``fraction`` of documents changed; returns how many."""
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    picked = rng.sample(range(len(rows)), max(1, round(fraction * len(rows))))
    for number, row_index in enumerate(picked):
        if number % 2:
            rows[row_index] = {**rows[row_index], "_id": f"new-{number}"}  # a removal plus an addition
        else:
            rows[row_index] = {**rows[row_index], "text": rows[row_index]["text"] + " (revised)"}
    out.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return len(picked)


def incremental_against_full(scifact: Path, work: Path) -> dict:
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.towers.dual_encoder import DualEncoder
    from dualsearch.write.build import build_index
    from dualsearch.write.reindex import reindex

    encoder = DualEncoder.load()
    index_dir = work / "scifact-index"
    started = time.perf_counter()
    build_index(read_corpus(scifact), index_dir, encoder, corpus_name=str(scifact), show_progress=True)
    full = time.perf_counter() - started
    changed = changed_copy(scifact / "corpus.jsonl", work / "changed.jsonl", 0.01)
    report = reindex(index_dir, work / "changed.jsonl", encoder, show_progress=True)
    return {
        "documents": report.added + report.updated + report.unchanged,
        "changed_documents": changed,
        "full_build_seconds": round(full, 2),
        "reindex_seconds": round(report.seconds, 2),
        "ratio": round(report.seconds / full, 4),
        "target_ratio": 0.10,
        "reindex_summary": report.summary(),
    }


def synthetic_corpus(path: Path, count: int, seed: int = 0) -> None:
    words = "index search vector tower query document corpus cluster list probe tea mars river piano".split()
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            handle.write(json.dumps({"_id": f"s{number}", "text": " ".join(rng.choices(words, k=8))}) + "\n")


_MEASURE = """
import json, resource, sys, threading, time
import psutil
from dualsearch.corpora.sources import read_corpus
from dualsearch.towers.dual_encoder import DualEncoder
from dualsearch.write.build import build_index
encoder = DualEncoder.load(sys.argv[1], batch_size=256)
process, peak, done = psutil.Process(), [0], threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.02)
before = process.memory_info().rss
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
build_index(read_corpus(sys.argv[2]), sys.argv[3], encoder)
done.set(); sampler.join()
print(json.dumps({"rss_before_mib": before / 2**20, "peak_during_indexing_mib": peak[0] / 2**20,
                  "process_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_memory(model_dir: Path, corpus: Path, index_dir: Path) -> dict:
    """RSS of a fresh process indexing ``corpus``: before indexing (towers loaded), the peak while
    indexing (sampled every 20 ms), and the whole process's peak (which start-up may set)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(model_dir), str(corpus), str(index_dir)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    measured = {key: round(value, 1) for key, value in json.loads(done.stdout.splitlines()[-1]).items()}
    return {**measured, "seconds": round(time.perf_counter() - started, 1)}


def memory_against_size(work: Path) -> dict:
    from dualsearch.testing import save_tiny_router_model

    model_dir = save_tiny_router_model(work / "tiny-model")
    measured = {}
    for count in (20_000, 200_000):
        corpus = work / f"synthetic-{count}.jsonl"
        synthetic_corpus(corpus, count)
        measured[count] = peak_memory(model_dir, corpus, work / f"index-{count}")
        logger.info("%d documents: %s", count, measured[count])
    small, large = measured[20_000], measured[200_000]
    return {
        "tower": "dualsearch.testing tiny router (2 layers, 32 wide)",
        "runs": measured,
        "ratio_200k_to_20k": round(large["peak_during_indexing_mib"] / small["peak_during_indexing_mib"], 3),
        "growth_during_indexing_mib": {
            count: round(m["peak_during_indexing_mib"] - m["rss_before_mib"], 1) for count, m in measured.items()
        },
        "target_ratio": 1.5,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding scifact/ (BEIR layout)")
    parser.add_argument("--skip-memory", action="store_true", help="only the incremental-cost part")
    parser.add_argument("--skip-incremental", action="store_true", help="only the memory part")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="dualsearch-bench-") as work:
        if not args.skip_incremental:
            incremental = incremental_against_full(args.data / "scifact", Path(work))
            print(
                f"re-index after 1% changed: {incremental['ratio']:.1%} of a full build; "
                f"wrote {write_result('reindex_incremental', incremental)}"
            )
        if not args.skip_memory:
            memory = memory_against_size(Path(work))
            print(
                f"peak memory while indexing, 200k/20k documents: {memory['ratio_200k_to_20k']}x; "
                f"wrote {write_result('reindex_memory', memory)}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
