"""A sharded index against one index of the same corpus, on SciFact: the same top 10 in every mode?

    python -m bench sharding [--data ../shared/data] [--work /tmp/dualsearch-bench-sharding] [--shards 2]

Builds SciFact's index with the default towers and settings (what ``dualsearch index`` gives), splits
it into ``--shards`` shards (:func:`dualsearch.write.shard_build.split_index`: nothing is encoded
again), opens both with ``dualsearch.Searcher.open``, and searches SciFact's test queries one at a
time in every mode: dense, lexical and hybrid, through the IVF lists at the calibrated nprobe, and
dense exactly. Per mode it counts the queries whose top-10 ids are the same list, those that differ
only in the order or the cut of documents with equal scores, and the others, and records the
largest score difference at equal ranks. It also times each query on both (p50 and p95): the cost of
searching shards one after another in one process, which a distributed search spreads over machines.

Writes results/sharding.json.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

from bench.common import DEFAULT_DATA, machine, percentile_ms, write_result

logger = logging.getLogger("bench.sharding")
MODES = {
    "dense": {"mode": "dense"},
    "dense, exact": {"mode": "dense", "exact": True},
    "lexical": {"mode": "lexical"},
    "hybrid": {"mode": "hybrid"},
}
K = 10
TOLERANCE = 1e-5


def compare(one: list, sharded: list) -> tuple[str, float]:
    """How two top-k lists of (id, score) agree: ``same``, ``ties`` (the same scores at every rank,
    the ids apart only among equal scores) or ``different``; and the largest score difference at
    equal ranks.

    Example:
        >>> compare([("a", 0.9), ("b", 0.5)], [("a", 0.9), ("b", 0.5)])
        ('same', 0.0)
        >>> compare([("a", 0.9), ("b", 0.5), ("c", 0.5)], [("a", 0.9), ("c", 0.5), ("b", 0.5)])
        ('ties', 0.0)
        >>> compare([("a", 0.9)], [("b", 0.8)])[0]
        'different'
    """
    if len(one) != len(sharded):
        return "different", float("inf")
    gap = max((abs(a[1] - b[1]) for a, b in zip(one, sharded)), default=0.0)
    if [doc for doc, _ in one] == [doc for doc, _ in sharded] and gap <= TOLERANCE:
        return "same", gap
    if gap > TOLERANCE:
        return "different", gap
    last = one[-1][1]

    def above(hits: list) -> set:  # the ids ranked above the last score must be the same
        return {doc for doc, score in hits if score - last > TOLERANCE}

    return ("ties" if above(one) == above(sharded) else "different"), gap


def scifact_indexes(collection: Path, work: Path, shards: int, again: bool = False) -> tuple[Path, Path, float]:
    """SciFact's index with the default towers and settings in ``work/one`` (built once, then reused),
    the same index split into ``shards`` shards in ``work/sharded`` (split anew with ``again``), and the
    seconds the split took (0 when reused)."""
    from dualsearch.towers.backends import load_encoder
    from dualsearch.write.build import index_corpus
    from dualsearch.write.shard_build import split_index

    if not collection.is_dir():
        raise SystemExit(f"{collection}: no SciFact collection (BEIR layout) there")
    one_dir, sharded_dir = work / "one", work / "sharded"
    encoder = load_encoder("default")
    if not (one_dir / "CURRENT").is_file():
        shutil.rmtree(one_dir, ignore_errors=True)
        index_corpus(str(collection), one_dir, encoder, show_progress=True)
    seconds = 0.0
    if again or not (sharded_dir / "shards.json").is_file():
        shutil.rmtree(sharded_dir, ignore_errors=True)
        started = time.perf_counter()
        split_index(one_dir, sharded_dir, encoder, shards)
        seconds = time.perf_counter() - started
    return one_dir, sharded_dir, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding scifact/ in BEIR layout")
    parser.add_argument("--work", type=Path, default=Path("/tmp/dualsearch-bench-sharding"))
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from dualsearch.corpora.beir import read_qrels, read_queries
    from dualsearch.read.searcher import Searcher
    from dualsearch.towers.backends import load_encoder

    collection = args.data / "scifact"
    one_dir, sharded_dir, split_seconds = scifact_indexes(collection, args.work, args.shards, again=True)
    encoder = load_encoder("default")
    with Searcher.open(sharded_dir, encoder=encoder) as sharded:
        counts = [len(shard) for shard in sharded.shards]
    queries = read_queries(collection)
    test = [queries[query_id] for query_id in sorted(read_qrels(collection, "test"))]
    result = {"collection": "scifact", "queries": len(test), "k": K, "shards": counts,
              "split_seconds": round(split_seconds, 2), "modes": {}, "machine": machine()}  # fmt: skip
    with Searcher.open(one_dir, encoder=encoder) as one, Searcher.open(sharded_dir, encoder=encoder) as sharded:
        for name, options in MODES.items():
            row = {"same": 0, "ties": 0, "different": 0, "largest_score_difference": 0.0}
            seconds = {"one": [], "sharded": []}
            for query in test:
                hits = {}
                for label, searcher in (("one", one), ("sharded", sharded)):
                    began = time.perf_counter()
                    found = searcher.search(query, k=K, **options)
                    seconds[label].append(time.perf_counter() - began)
                    hits[label] = [(r.doc_id, r.score) for r in found]
                verdict, gap = compare(hits["one"], hits["sharded"])
                row[verdict] += 1
                row["largest_score_difference"] = max(row["largest_score_difference"], gap)
            for label, values in seconds.items():
                row[f"{label}_p50_ms"] = round(percentile_ms(values, 50), 2)
                row[f"{label}_p95_ms"] = round(percentile_ms(values, 95), 2)
            result["modes"][name] = row
            logger.info("%s: %s", name, row)
    path = write_result("sharding", result)
    for name, row in result["modes"].items():
        print(f"{name}: {row['same']} same, {row['ties']} apart only in ties, {row['different']} different; "
              f"p50 {row['one_p50_ms']} ms one index, {row['sharded_p50_ms']} ms {args.shards} shards")  # fmt: skip
    print(f"wrote {path}")
    return 0 if all(row["different"] == 0 for row in result["modes"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
