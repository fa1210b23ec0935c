"""What ``import dualsearch`` costs a script, and what touching a name loads.

Each statement runs in a fresh interpreter ``--runs`` times (interleaved, so drift in machine load
hits all of them alike); the figure is the median wall time minus that of an empty interpreter.
Target: ``import dualsearch`` under one second on a 2-core machine (it should be milliseconds: the
facade loads its names on first use).

    python -m bench.import_time [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from bench.common import write_result

HEAVY = ("torch", "sentence_transformers", "transformers", "gradio", "faiss", "numpy")
STATEMENTS = {
    "empty interpreter": "pass",
    "import dualsearch": "import dualsearch",
    "dualsearch.read_corpus": "import dualsearch; dualsearch.read_corpus",
    "dualsearch.Searcher": "import dualsearch; dualsearch.Searcher",
    "dualsearch.DualEncoder.load (module)": (
        "import dualsearch; dualsearch.DualEncoder; import dualsearch.towers.weights"
    ),
}
PROBE = "; import sys, json; print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"


def run_once(statement: str) -> tuple[float, list[str]]:
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", statement + PROBE.format(heavy=HEAVY)], check=True, capture_output=True, text=True
    ).stdout
    return time.perf_counter() - started, json.loads(output.strip().splitlines()[-1])


def measure(runs: int) -> dict[str, dict]:
    seconds: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    loaded: dict[str, list[str]] = {}
    for _ in range(runs):
        for name, statement in STATEMENTS.items():
            elapsed, heavy = run_once(statement)
            seconds[name].append(elapsed)
            loaded[name] = heavy
    baseline = statistics.median(seconds["empty interpreter"])
    return {
        name: {
            "median_ms": round(statistics.median(values) * 1000, 1),
            "over_empty_interpreter_ms": round((statistics.median(values) - baseline) * 1000, 1),
            "heavy_modules_loaded": loaded[name],
        }
        for name, values in seconds.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_time", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per statement (default 15)")
    args = parser.parse_args(argv)
    results = measure(args.runs)
    path = write_result("import_time", {"runs": args.runs, "statements": STATEMENTS, "results": results})
    for name, row in results.items():
        print(
            f"{name:40} {row['median_ms']:8.1f} ms  (+{row['over_empty_interpreter_ms']:.1f})  "
            f"loads {row['heavy_modules_loaded']}"
        )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
