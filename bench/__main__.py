"""One entry point for every benchmark, then the report.

    python -m bench all [--skip finetune,finetune_defaults,finetune_length,scale,ondisk] [--nice 5] [--dry-run]
                                                    every benchmark, then the report
    python -m bench report [--results DIR] [--docs DIR]    only regenerate docs/benchmarks.md
    python -m bench NAME [ARGS...]                          one benchmark; ARGS go to it
    python -m bench list                                    the benchmarks, in run order

Each benchmark runs as ``python -m bench.NAME`` in its own process: the results file then records
the command that really made it, and one benchmark's memory (a million vectors, two towers) is
returned before the next starts. A failing benchmark is reported and the rest still run (unless
``--stop-on-error``); the report is regenerated from whatever results exist.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time

from bench.common import REPO

logger = logging.getLogger(__name__)
# Run order: import time first (quick), then quality and the SciFact index (later scripts reuse its index),
# the slow ones last.
BENCHMARKS = {
    "import_time": "what `import dualsearch` costs a script, and what using a name loads",
    "zero_shot": "default towers on SciFact and NFCorpus test, published numbers beside (builds the indexes)",
    "engine": "SciFact encoding speed, build time, query latency, IVF overlap by nprobe",
    "ann_compare": "Flat / IVF-Flat / IVF-SQ8 / IVF-PQ / HNSW speed and accuracy on SciFact and 1M synthetic vectors",
    "encoding": "tower throughput by batch size and sequence length, cost of each query stage",
    "reindex": "incremental re-index against a full build, memory against corpus size",
    "writes": "one add, replace or delete, a 1% re-index and search with 10 segments, at 10k, 100k and 1M documents",
    "lexical_segments": "BM25 over segments with deletions against bm25s on SciFact and NFCorpus: nDCG@10, latency",
    "hybrid": "truncated vs passages, BM25 and hybrid search on SciFact and NFCorpus, chosen on dev (about 1 hour)",
    "service_load": "`dualsearch serve` under 1, 4 and 16 clients, with and without micro-batching, and a live swap",
    "service_writes": "4 writers and 16 readers for 60 s, 10 SIGKILLs under that load, one write with the real towers",
    "sharding": "SciFact in 2 shards against one index: the same top 10 in every mode, and each query's time",
    "ray_serving": "SciFact's shards on Ray Serve against one server: fan-out overhead, a replica killed, a write",
    "backends": "towers on PyTorch, ONNX fp32/int8, OpenVINO fp32/int8: encoding, query latency, nDCG@10 (40 min)",
    "one_shot": "`dualsearch search` as whole processes, light path against PyTorch; equality of their vectors",
    "stdlib_dev": "how the default index ranks (fusion weight, usage prior), chosen on dev questions",
    "stdlib_search": "everyday Python questions against the default index (stdlib docs): MRR@10, success@5",
    "stdlib_ablations": "ranking changes tried for the default index and rejected, scored on its dev questions",
    "stdlib_towers": "the default index's towers trained on Python questions and docs, chosen on dev, scored (40 min)",
    "click_log": "a simulated click log over NFCorpus train (position-biased clicks, Zipf queries) and its statistics",
    "ray_encoding": "index builds encoded locally and on Ray actors, 2,000 SciFact documents (about 10 min)",
    "scale": "IVF over 1M synthetic vectors: build time, memory, latency (slow)",
    "ondisk": "1M synthetic vectors, IVF lists in memory against on disk: memory and latency (slow)",
    "finetune": "BM25, zero-shot and fine-tuned towers (slow: hours on 2 cores)",
    "finetune_defaults": "`dualsearch finetune DATA --out M` with no other flag, in-domain and cross-collection (slow)",
    "finetune_length": "SciFact train queries, NFCorpus-trained towers, documents cut at 128 and 256 tokens",
    "finetune_similarity": "SciFact towers trained with cosine, dot product and Euclidean distance (about 50 min)",
    "click_training": "NFCorpus towers trained on the simulated click log, 6 ways of taking negatives (slow: hours)",
    "first_run": "a fresh clone: `make run` to the first answer, the venv's size, then `make test` (about 20 min)",
}
# Tools run by hand, with arguments only their user can give (a trial's settings, a model directory):
# `python -m bench NAME ARGS` runs them; `all` lists them as not run, and why.
NEEDS_ARGUMENTS = {
    "finetune_dev": "a dev-only fine-tuning trial: NAME --collection C --set KEY=VALUE ...",
    "finetune_drift": "how far apart a model's two towers drifted: MODEL_DIR BEIR_DIR",
    "finetune_tower_alphas": "a grid of per-tower interpolation weights: --model DIR --collection C",
    "stdlib_pairs": "CoNaLa's questions mapped to the default corpus, written as a BEIR directory: --out DIR",
    "serve_floor": "Ray Serve's own cost of a request and of a round, printed (ray_serving runs and records it)",
}
# finetune_length reads the towers finetune_defaults saves
SLOW = (
    "finetune",
    "finetune_defaults",
    "finetune_length",
    "scale",
    "ondisk",
    "finetune_similarity",
    "click_training",
    "first_run",
    "stdlib_towers",
)


def parse_skip(text: str) -> list[str]:
    """Benchmark names from a comma-separated list, refusing unknown ones with the valid options.

    Example:
        >>> parse_skip("finetune, scale")
        ['finetune', 'scale']
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    return names


def command_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="benchmarks, in the order `all` runs them:\n"
        + "\n".join(f"  {n:12} {d}" for n, d in BENCHMARKS.items())
        + "\n\nrun by hand, with arguments (not by `all`):\n"
        + "\n".join(f"  {n:12} {d}" for n, d in NEEDS_ARGUMENTS.items()),
    )
    parser.add_argument(
        "command",
        choices=["all", "report", "list", *BENCHMARKS, *NEEDS_ARGUMENTS],
        metavar="COMMAND",
        help="all | report | list | one of the benchmarks below",
    )
    parser.add_argument(
        "args", nargs=argparse.REMAINDER, help="options for that command (see python -m bench COMMAND --help)"
    )
    return parser


def all_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench all",
        description="Run every benchmark in turn (each in its own process), then the report.",
    )
    parser.add_argument(
        "--skip",
        type=parse_skip,
        default=[],
        metavar="NAMES",
        help=f"comma-separated benchmarks to leave out, e.g. {','.join(SLOW)} (the slow ones)",
    )
    parser.add_argument(
        "--nice", type=int, default=0, help="niceness added to each benchmark process (e.g. 5 on a shared machine)"
    )
    parser.add_argument("--stop-on-error", action="store_true", help="stop at the first failing benchmark")
    parser.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    return parser


def benchmark_command(name: str, args: list[str] | None = None) -> list[str]:
    """The argv that runs one benchmark: ``python -m bench.NAME ARGS``."""
    if name not in BENCHMARKS and name not in NEEDS_ARGUMENTS:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join([*BENCHMARKS, *NEEDS_ARGUMENTS])}")
    return [sys.executable, "-m", f"bench.{name}", *(args or [])]


def plan(skip: list[str]) -> list[str]:
    """Benchmarks ``all`` runs, in order, leaving out ``skip``.

    Example:
        >>> plan(["finetune", "scale"])[:4], "scale" in plan(["finetune", "scale"])
        (['import_time', 'zero_shot', 'engine', 'ann_compare'], False)
    """
    return [name for name in BENCHMARKS if name not in set(skip)]


def run_benchmark(name: str, args: list[str], nice: int = 0) -> tuple[int, float]:
    """Run one benchmark in a child process; returns (exit code, wall seconds)."""
    command = benchmark_command(name, args)
    logger.info("running python %s", " ".join(command[1:]))
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, preexec_fn=(lambda: os.nice(nice)) if nice else None)
    return done.returncode, time.perf_counter() - started


def run_all(options: argparse.Namespace) -> int:
    names = plan(options.skip)
    if options.dry_run:
        for name in names:
            print(
                (f"nice -n {options.nice} " if options.nice else "") + "python " + " ".join(benchmark_command(name)[1:])
            )
        print("python -m bench report")
        return 0
    timings, failed = [], []
    for name in names:
        code, seconds = run_benchmark(name, [], options.nice)
        timings.append((name, seconds, code))
        if code != 0:
            failed.append(name)
            logger.error("%s failed with exit code %d after %.0fs", name, code, seconds)
            if options.stop_on_error:
                break
    from bench.report import write_report

    started = time.perf_counter()
    path = write_report()
    timings.append(("report", time.perf_counter() - started, 0))
    print(f"wrote {path}\n\nbenchmark      minutes  status")
    for name, seconds, code in timings:
        print(f"{name:14} {seconds / 60:7.1f}  {'ok' if code == 0 else f'failed ({code})'}")
    print(f"{'total':14} {sum(t[1] for t in timings) / 60:7.1f}")
    for name in NEEDS_ARGUMENTS:
        print(f"{name:14} not run: it needs arguments (python -m bench {name} --help)")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    options = command_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if options.command == "list":
        for name, description in BENCHMARKS.items():
            print(f"{name:12} {description}")
        for name, description in NEEDS_ARGUMENTS.items():
            print(f"{name:12} (by hand) {description}")
        return 0
    if options.command == "report":
        from bench.report import main as report_main

        return report_main(options.args)
    if options.command == "all":
        return run_all(all_parser().parse_args(options.args))
    code, seconds = run_benchmark(options.command, options.args)
    logger.info("%s finished in %.1f min with exit code %d", options.command, seconds / 60, code)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
