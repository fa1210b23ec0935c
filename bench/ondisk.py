"""Indexes larger than memory: IVF lists on disk (``--on-disk``) against the same index in memory,
over 1,000,000 synthetic 384-dimensional vectors.

    python -m bench.ondisk [--count 1000000] [--queries 200] [--work /tmp/dualsearch-bench/ondisk]

The vectors are bench.scale's (a random projection of a 32-d Gaussian plus noise, written to a file and
memory-mapped as the indexer does) and both indexes are built by the engine's own code
(``dualsearch.index.ann_build.index_vectors``, the on-disk one through ``dualsearch.index.ondisk``), each build and
each search in a process of its own so its peak memory is its own. For each kind:

- build: seconds, peak resident memory (VmHWM) and peak anonymous memory (sampled every 50 ms);
- search: the smallest nprobe whose overlap@10 with exact search reaches 0.95 on the queries, then one
  query at a time at that nprobe, p50/p95, and resident memory after the queries, split into anonymous
  memory and mapped file pages (the kernel's page cache, which it takes back under memory pressure);
- search under a memory limit (a cgroup v1 memory controller, where this machine lets us make one):
  the first ``--limited-queries`` queries in a process held to 25% of the in-memory index's resident
  memory, the page cache emptied first so every page it reads is charged to it. The on-disk index
  must answer them (its pages are evicted and read again, at disk speed); the in-memory one cannot load.

Writes results/ondisk.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import percentile_ms, write_result

logger = logging.getLogger("bench.ondisk")
TARGET_OVERLAP = 0.95
LIMIT_SHARE = 0.25  # the memory limit, as a share of the in-memory index's resident memory while searching
KINDS = ("memory", "disk")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--work", type=Path, default=Path("/tmp/dualsearch-bench/ondisk"))
    parser.add_argument("--step", choices=("build", "search"), help=argparse.SUPPRESS)  # one child process's job
    parser.add_argument("--kind", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--nprobe", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--limited-queries", type=int, default=10, help="queries timed under the memory limit (each reads from disk)"
    )
    parser.add_argument("--timed", type=int, default=0, help=argparse.SUPPRESS)  # queries to time (0: all)
    return parser.parse_args(argv)


def memory_status() -> dict[str, float]:
    """This process's resident memory in MiB: total, anonymous, mapped files, and the peak total."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return {"rss": fields["VmRSS"], "anonymous": fields["RssAnon"], "file": fields["RssFile"], "peak": fields["VmHWM"]}


class AnonymousPeak:
    """The highest anonymous resident memory seen while the block runs (sampled every 50 ms)."""

    def __enter__(self):
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, memory_status()["anonymous"])

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, memory_status()["anonymous"])


def build(work: Path, kind: str) -> dict:
    import faiss

    from dualsearch.index import layout
    from dualsearch.index.ann_build import index_vectors
    from dualsearch.index.config import IndexConfig

    vectors = np.memmap(work / "vectors.f32", dtype=np.float32, mode="r").reshape(-1, 384)
    directory = work / kind
    directory.mkdir(exist_ok=True)
    started = time.perf_counter()
    with AnonymousPeak() as anonymous:
        index, plan, _ = index_vectors(vectors, IndexConfig(), on_disk_dir=directory if kind == "disk" else None)
        faiss.write_index(index, str(directory / layout.INDEX_FILE))
    files = {p.name: p.stat().st_size for p in directory.iterdir()}
    return {
        "factory": plan.factory,
        "build_seconds": round(time.perf_counter() - started, 1),
        "build_peak_rss_mib": memory_status()["peak"],
        "build_peak_anonymous_mib": anonymous.peak,
        "file_bytes": files,
    }


def search(work: Path, kind: str, nprobe: int, timed: int = 0) -> dict:
    """With ``nprobe`` 0, find the smallest reaching the target overlap first; time the first ``timed``
    queries (0: all)."""
    from dualsearch.index import layout, ondisk
    from dualsearch.index.ann import ivf_part, nprobe_grid, overlap_at_k, search_vectors

    queries, exact = np.load(work / "queries.npy"), np.load(work / "exact.npy")
    opened = memory_status()["rss"]
    index = ondisk.read_index(work / kind / layout.INDEX_FILE, on_disk=kind == "disk")
    after_open = memory_status()
    overlaps = {}
    if not nprobe:
        for candidate in nprobe_grid(ivf_part(index).nlist):
            _, found = search_vectors(index, queries, 10, candidate)
            overlaps[candidate] = round(overlap_at_k(found, exact, 10), 4)
            if overlaps[candidate] >= TARGET_OVERLAP:
                nprobe = candidate
                break
    times = []
    for row in range(timed or len(queries)):
        started = time.perf_counter()
        search_vectors(index, queries[row : row + 1], 10, nprobe)
        times.append(time.perf_counter() - started)
    return {
        "nprobe": nprobe,
        "timed_queries": len(times),
        "overlap_by_nprobe": overlaps,
        "p50_ms": round(percentile_ms(times, 50), 3),
        "p95_ms": round(percentile_ms(times, 95), 3),
        "memory_before_open_mib": opened,
        "memory_after_open_mib": after_open,
        "memory_after_queries_mib": memory_status(),
    }


def run_step(args, step: str, kind: str, nprobe: int = 0, cgroup: Path | None = None, timed: int = 0) -> dict | None:
    """Run one step in a child process (inside ``cgroup`` when given); its JSON answer, or None if it died."""
    command = [sys.executable, "-m", "bench.ondisk", "--step", step, "--kind", kind, "--work", str(args.work)]
    command += ["--nprobe", str(nprobe), "--timed", str(timed)]
    enter = None
    if cgroup is not None:
        enter = lambda: (cgroup / "cgroup.procs").write_text(str(os.getpid()))  # noqa: E731 (runs in the child)
    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=enter)
    if done.returncode != 0:
        logger.info("%s %s exited with %d: %s", step, kind, done.returncode, done.stderr.strip()[-300:])
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_cgroup(limit_bytes: int) -> Path | None:
    """A new cgroup v1 memory controller under this process's own, limited to ``limit_bytes``; None where
    the machine does not let us make one."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "memory":
            group = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / f"dualsearch-bench-{os.getpid()}"
            try:
                group.mkdir()
                (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
            except OSError as error:
                logger.info("no memory cgroup: %s", error)
                return None
            swap_limit = group / "memory.memsw.limit_in_bytes"  # no escape into swap, where swap is counted
            if swap_limit.exists():
                swap_limit.write_text(str(limit_bytes))
            return group
    return None


def drop_page_cache() -> bool:
    """Empty the kernel's page cache (root only), so the index's pages are read, and charged to the
    limited process, again: pages cached by an earlier step are charged to whoever read them first."""
    subprocess.run(["sync"], check=False)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError:
        return False
    return True


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    if args.step == "build":
        print(json.dumps(build(args.work, args.kind)))
        return 0
    if args.step == "search":
        print(json.dumps(search(args.work, args.kind, args.nprobe, args.timed)))
        return 0
    import faiss

    from bench.scale import queries_like, synthetic_vectors

    args.work.mkdir(parents=True, exist_ok=True)
    vectors = synthetic_vectors(args.work / "vectors.f32", args.count)
    queries = queries_like(vectors, args.queries)
    _, exact = faiss.knn(queries, np.asarray(vectors), 10, metric=faiss.METRIC_INNER_PRODUCT)
    np.save(args.work / "queries.npy", queries)
    np.save(args.work / "exact.npy", exact)
    del vectors
    result = {"vectors": args.count, "dimension": 384, "queries": args.queries, "target_overlap": TARGET_OVERLAP}
    for kind in KINDS:
        result[kind] = {"build": run_step(args, "build", kind)}
        logger.info("%s build: %s", kind, result[kind]["build"])
    nprobe = 0
    for kind in KINDS:  # the in-memory index finds the nprobe; the on-disk one searches at the same
        result[kind]["search"] = run_step(args, "search", kind, nprobe)
        nprobe = result[kind]["search"]["nprobe"]
        logger.info("%s search: %s", kind, result[kind]["search"])
    in_memory_rss = result["memory"]["search"]["memory_after_queries_mib"]["rss"]
    limit = int(LIMIT_SHARE * in_memory_rss * 2**20)
    result["limit_mib"] = round(limit / 2**20, 1)
    baseline = result["disk"]["search"]["memory_before_open_mib"]  # Python, numpy and FAISS themselves
    for kind in KINDS:
        if limit < 2 * baseline * 2**20:
            too_small = f"not measured: a limit of {limit / 2**20:.0f} MiB is below what Python itself needs"
            result[kind]["search_under_limit"] = too_small
            continue
        group = memory_cgroup(limit)
        if group is None:
            result[kind]["search_under_limit"] = "not measured: no memory cgroup on this machine"
            continue
        result["page_cache_dropped"] = drop_page_cache()
        try:
            answer = run_step(args, "search", kind, nprobe, group, args.limited_queries)
            peak = int((group / "memory.max_usage_in_bytes").read_text())
        finally:
            group.rmdir()
        result[kind]["search_under_limit"] = (
            {**answer, "cgroup_peak_mib": round(peak / 2**20, 1)} if answer else "killed: out of memory under the limit"
        )
        logger.info("%s under %.0f MiB: %s", kind, limit / 2**20, result[kind]["search_under_limit"])
    disk, memory = result["disk"]["search"], result["memory"]["search"]
    result["ratios_disk_to_memory"] = {
        "p50": round(disk["p50_ms"] / memory["p50_ms"], 2),
        "rss_after_queries": round(disk["memory_after_queries_mib"]["rss"] / in_memory_rss, 3),
        "anonymous_after_queries": round(
            disk["memory_after_queries_mib"]["anonymous"] / memory["memory_after_queries_mib"]["anonymous"], 3
        ),
        "build_peak_rss": round(
            result["disk"]["build"]["build_peak_rss_mib"] / result["memory"]["build"]["build_peak_rss_mib"], 3
        ),
    }
    print(f"wrote {write_result('ondisk', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
