"""What one write costs, against the corpus size: segments against rewriting the whole index.

    python -m bench.write_costs [--sizes 10000 60000] [--repeats 3] [--work DIR]

Per corpus size (synthetic documents of 40-80 words, the deterministic test towers
``dualsearch.testing.FakeEncoder`` at 384 dimensions, so no model time is counted; IVF with the
default factory), one index is built, then each operation is timed ``--repeats`` times in one run:

  add one         add_documents with one new document
  replace one     add_documents with a changed copy of a stored document
  delete one      delete_documents of one stored document
  add 100         add_documents with 100 new documents
  rewrite         optimize after a delete: every document copied into one segment, lists and BM25
                  postings rebuilt, which is what every write cost before segments

and then the search side: single-query hybrid latency (p50, 100 queries) with the segments the
writes left, and after ``optimize``. Writes results/write_costs.json.
"""

from __future__ import annotations

import argparse
import logging
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


def synthetic_documents(count: int, seed: int = 0):
    from dualsearch.corpora.document import Document

    rng = random.Random(seed)
    for number in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(40, 80))]
        yield Document(f"d{number}", f"note {number}", " ".join(words) + f" n{number}")


def timed(operation) -> float:
    started = time.perf_counter()
    operation()
    return time.perf_counter() - started


def measure(size: int, repeats: int, work: Path) -> dict:
    from dualsearch.corpora.document import Document
    from dualsearch.index import layout
    from dualsearch.index.manifest import Manifest
    from dualsearch.read.searcher import Searcher
    from dualsearch.testing import FakeEncoder
    from dualsearch.write.build import build_index
    from dualsearch.write.reindex import add_documents, delete_documents, optimize

    encoder = FakeEncoder(dimension=384)
    index_dir = work / f"index-{size}"
    build_seconds = timed(lambda: build_index(synthetic_documents(size), index_dir, encoder))
    seconds: dict[str, list[float]] = {
        name: [] for name in ("add one", "replace one", "delete one", "add 100", "rewrite")
    }
    for round_number in range(repeats):
        new = Document(f"new-{round_number}", "", f"a new note {round_number} about lanterns and falcons")
        seconds["add one"].append(timed(lambda: add_documents(index_dir, [new], encoder)))
        changed = Document(f"d{round_number}", "", f"note {round_number} rewritten about quartz")
        seconds["replace one"].append(timed(lambda: add_documents(index_dir, [changed], encoder)))
        gone = f"d{size - 1 - round_number}"
        seconds["delete one"].append(timed(lambda: delete_documents(index_dir, [gone], encoder)))
        batch = [Document(f"batch-{round_number}-{n}", "", f"batch note {n} of willow") for n in range(100)]
        seconds["add 100"].append(timed(lambda: add_documents(index_dir, batch, encoder)))
        delete_documents(index_dir, [f"d{size // 2 + round_number}"], encoder)
        seconds["rewrite"].append(timed(lambda: optimize(index_dir, encoder)))
    for number in range(20):  # a stream of small writes: what a searcher meets before a merge
        add_documents(index_dir, [Document(f"stream-{number}", "", f"streamed note {number}")], encoder)
    segments = len(Manifest.read(layout.current_version_dir(index_dir)).segments)
    queries = [" ".join(random.Random(n).sample(WORDS, 3)) for n in range(100)]
    with Searcher.open(index_dir, encoder=encoder) as searcher:
        fragmented = [timed(lambda q=q: searcher.search(q, k=10)) for q in queries]
    optimize(index_dir, encoder)
    with Searcher.open(index_dir, encoder=encoder) as searcher:
        merged = [timed(lambda q=q: searcher.search(q, k=10)) for q in queries]
    return {
        "documents": size,
        "build_seconds": round(build_seconds, 2),
        "write_seconds_median": {name: round(statistics.median(values), 3) for name, values in seconds.items()},
        "write_seconds": {name: [round(value, 3) for value in values] for name, values in seconds.items()},
        "search": {
            "segments_after_stream": segments,
            "hybrid_p50_ms_with_those_segments": round(percentile_ms(fragmented, 50), 2),
            "hybrid_p50_ms_after_optimize": round(percentile_ms(merged, 50), 2),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.write_costs", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 60_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        sizes = {}
        for size in args.sizes:
            sizes[str(size)] = measure(size, args.repeats, work)
            logger.info("%d documents: %s", size, sizes[str(size)]["write_seconds_median"])
    path = write_result(
        "write_costs", {"towers": "FakeEncoder(dimension=384)", "repeats": args.repeats, "sizes": sizes}
    )
    logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
