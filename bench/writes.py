"""What a write costs against the corpus size, with segments; and what segments cost a search.

    python -m bench writes [--sizes 10000 100000 1000000] [--repeats 5] [--work DIR]

Per corpus size (synthetic documents of 40-80 words, the deterministic test towers
``dualsearch.testing.FakeEncoder`` at 384 dimensions so that no model time is counted, IVF with the
default factory), one index is built, then, in one run:

- **one write**, each timed ``--repeats`` times: ``add one`` (a new document), ``replace one`` (a
  changed copy of a stored one), ``delete one``, ``add 100``, through the CLI's code path
  (``add_documents``/``delete_documents``);
- **re-index after a 1% change**: ``reindex`` with the corpus in which every hundredth document
  changed, the bytes it wrote (files new or changed in the index directory) against the bytes of the
  full build;
- **search with 10 unmerged segments**: nine one-document writes applied as the service applies them
  (no merge), hybrid p50 latency of 100 single queries, then the same after ``optimize``;
- ``rewrite``: that ``optimize``, every document copied into one segment: what every write cost
  before segments;
- at the smallest size, **optimize against a fresh build** of the same documents: top-10 ids and
  scores of 100 queries in every mode. Dense scores are compared with exact search: a fresh build
  trains its own IVF centroids, and with other centroids an approximate search visits other lists.

Writes results/writes.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import percentile_ms, write_result

logger = logging.getLogger(__name__)
WORDS = (
    "solar wind river stone glass paper cloud orbit garden engine copper violin harbor forest ember lantern "
    "meadow canyon glacier marble thunder velvet quartz nectar falcon willow saddle harvest beacon pepper"
).split()
WRITES = ("add one", "replace one", "delete one", "add 100")
QUERY_COUNT = 100
UNMERGED_SEGMENTS = 10


def synthetic_documents(count: int, seed: int = 0, changed_every: int = 0):
    """``count`` documents; with ``changed_every``, every such document's text is changed."""
    from dualsearch.corpora.document import Document

    rng = random.Random(seed)
    for number in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(40, 80))]
        changed = " changed" if changed_every and number % changed_every == 0 else ""
        yield Document(f"d{number}", f"note {number}", " ".join(words) + f" n{number}{changed}")


def timed(operation) -> float:
    started = time.perf_counter()
    operation()
    return time.perf_counter() - started


def files_of(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under ``directory``: (size, inode, modification time)."""
    found = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = Path(root) / name
            status = path.stat()
            found[str(path)] = (status.st_size, status.st_ino, status.st_mtime_ns)
    return found


def bytes_written(before: dict, after: dict) -> int:
    """The bytes of the files that are new or rewritten in ``after``."""
    return sum(state[0] for path, state in after.items() if before.get(path) != state)


def measure(size: int, repeats: int, work: Path, compare_fresh: bool) -> dict:
    from dualsearch.corpora.document import Document
    from dualsearch.read.searcher import Searcher
    from dualsearch.testing import FakeEncoder
    from dualsearch.write.build import build_index
    from dualsearch.write.logged_writes import apply_records
    from dualsearch.write.reindex import add_documents, delete_documents, optimize, reindex
    from dualsearch.write.write_log import LogRecord

    encoder = FakeEncoder(dimension=384)
    index_dir = work / f"index-{size}"
    build_seconds = timed(lambda: build_index(synthetic_documents(size), index_dir, encoder))
    build_bytes = sum(state[0] for state in files_of(index_dir).values())
    logger.info("%d documents: built in %.1fs, %.0f MB", size, build_seconds, build_bytes / 1e6)

    # a 1% change first, on the fresh build: the nightly re-index the issue describes
    corpus = work / f"corpus-{size}.jsonl"
    with corpus.open("w", encoding="utf-8") as handle:
        for document in synthetic_documents(size, changed_every=100):
            handle.write(json.dumps({"_id": document.id, "title": document.title, "text": document.text}) + "\n")
    before = files_of(index_dir)
    reindex_seconds = timed(lambda: reindex(index_dir, corpus, encoder))
    reindex_bytes = bytes_written(before, files_of(index_dir))
    corpus.unlink()

    seconds: dict[str, list[float]] = {name: [] for name in WRITES}
    for round_number in range(repeats):
        new = Document(f"new-{round_number}", "", f"a new note {round_number} about lanterns and falcons")
        seconds["add one"].append(timed(lambda: add_documents(index_dir, [new], encoder)))
        changed = Document(f"d{round_number + 1}", "", f"note {round_number} rewritten about quartz")
        seconds["replace one"].append(timed(lambda: add_documents(index_dir, [changed], encoder)))
        gone = f"d{size - 1 - round_number}"
        seconds["delete one"].append(timed(lambda: delete_documents(index_dir, [gone], encoder)))
        batch = [Document(f"batch-{round_number}-{n}", "", f"batch note {n} of willow") for n in range(100)]
        seconds["add 100"].append(timed(lambda: add_documents(index_dir, batch, encoder)))

    optimize(index_dir, encoder)  # the search comparison starts from one segment
    for number in range(UNMERGED_SEGMENTS - 1):  # as the service applies its log: a segment each, no merge
        record = LogRecord(10**9 + number, "add", (Document(f"stream-{number}", "", f"streamed note {number}"),))
        apply_records(index_dir, [record], encoder)
    queries = [" ".join(random.Random(n).sample(WORDS, 3)) for n in range(QUERY_COUNT)]
    with Searcher.open(index_dir, encoder=encoder) as searcher:
        segments = len(searcher.manifest.segments)
        unmerged = latencies(searcher, queries)
    rewrite_seconds = timed(lambda: optimize(index_dir, encoder))
    with Searcher.open(index_dir, encoder=encoder) as searcher:
        merged = latencies(searcher, queries)
    record = {
        "documents": size,
        "build_seconds": round(build_seconds, 2),
        "build_bytes": build_bytes,
        "write_seconds_median": {name: round(statistics.median(values), 4) for name, values in seconds.items()},
        "write_seconds": {name: [round(value, 4) for value in values] for name, values in seconds.items()},
        "reindex_1_percent": {
            "seconds": round(reindex_seconds, 2),
            "bytes_written": reindex_bytes,
            "share_of_build_bytes": round(reindex_bytes / build_bytes, 4),
        },
        "rewrite_seconds": round(rewrite_seconds, 2),
        "search": {
            "segments": segments,
            "hybrid_p50_ms_unmerged": round(percentile_ms(unmerged, 50), 2),
            "hybrid_p50_ms_after_optimize": round(percentile_ms(merged, 50), 2),
            "ratio": round(percentile_ms(unmerged, 50) / percentile_ms(merged, 50), 3),
        },
    }
    if compare_fresh:
        record["optimize_against_fresh_build"] = against_fresh_build(index_dir, work / f"fresh-{size}", queries)
    logger.info("%d documents: %s", size, json.dumps({k: v for k, v in record.items() if k != "write_seconds"}))
    return record


def latencies(searcher, queries: list[str]) -> list[float]:
    searcher.search(queries[0], k=10)  # warm
    return [timed(lambda q=q: searcher.search(q, k=10)) for q in queries]


def against_fresh_build(index_dir: Path, fresh_dir: Path, queries: list[str]) -> dict:
    """Top-10 of the optimized index against a fresh build of its documents, in every mode."""
    from dualsearch.read.searcher import Searcher
    from dualsearch.testing import FakeEncoder
    from dualsearch.write.build import build_index

    encoder = FakeEncoder(dimension=384)
    with Searcher.open(index_dir, encoder=encoder) as searcher:
        documents = list(searcher.store.iter_documents())
    build_index(documents, fresh_dir, encoder)
    compared = {}
    with Searcher.open(index_dir, encoder=encoder) as optimized, Searcher.open(fresh_dir, encoder=encoder) as fresh:
        for mode in ("hybrid", "dense", "lexical"):
            same_ids, largest = 0, 0.0
            for query in queries:
                ours = optimized.search(query, k=10, mode=mode, exact=True)
                theirs = fresh.search(query, k=10, mode=mode, exact=True)
                same_ids += tie_aware_ids(ours) == tie_aware_ids(theirs)
                largest = max([largest, *(abs(a.score - b.score) for a, b in zip(ours, theirs, strict=True))])
            compared[mode] = {"queries": len(queries), "same_top10": same_ids, "largest_score_difference": largest}
    return compared


def tie_aware_ids(results) -> tuple[list[float], list[str]]:
    """The scores, and the ids above the tenth score in id order: documents tied at the tenth may be cut
    apart by two indexes of the same documents (their rows differ)."""
    scores = [round(r.score, 5) for r in results]
    return scores, sorted(r.doc_id for r in results if round(r.score, 5) > scores[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.writes", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        sizes = {}
        for size in sorted(args.sizes):
            sizes[str(size)] = measure(size, args.repeats, work, compare_fresh=size == min(args.sizes))
    path = write_result("writes", {"towers": "FakeEncoder(dimension=384)", "repeats": args.repeats, "sizes": sizes})
    logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
