"""Small helpers every benchmark shares: where data is, machine facts, timing, writing results."""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dualsearch.defaults import benchmark_data_dir

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "results"
DEFAULT_DATA = benchmark_data_dir(REPO)


def percentile_ms(seconds: list[float], q: float) -> float:
    """The q-th percentile of durations given in seconds, in milliseconds.

    Example:
        >>> percentile_ms([0.001, 0.002, 0.003], 50)
        2.0
    """
    if not seconds:
        raise ValueError("no durations")
    return float(np.percentile(np.asarray(seconds) * 1000.0, q))


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``function`` and return (its result, wall seconds)."""
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    import psutil

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        # Shared machines: a load above the core count means the timings were taken under contention.
        "load_average_1_5_15_min": [round(value, 2) for value in os.getloadavg()],
    }


def write_result(name: str, payload: dict[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """Write ``results/<name>.json`` with the command that made it, the machine, versions and date."""
    from dualsearch.index.manifest import library_versions

    results_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python -m "
        + " ".join(shlex.quote(repository_relative(a)) for a in [_module_name()] + sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": machine(),
        "library_versions": library_versions(),
        **payload,
    }
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def repository_relative(argument: str) -> str:
    """A command's argument as recorded: an absolute path inside the repository, or inside the
    benchmark data's folder beside it, is written relative to the repository, so a results file does
    not carry the folders of the machine it ran on. Other paths (a model in /tmp, say) stay as given:
    where the repository sits says nothing about them.

    Example:
        >>> repository_relative(str(REPO / "results")), repository_relative(str(REPO.parent / "shared" / "data"))
        ('results', '../shared/data')
        >>> repository_relative("--k=10"), repository_relative("relative/path")
        ('--k=10', 'relative/path')
    """
    path = Path(argument)
    shared = REPO.parent / "shared"
    if path.is_absolute() and any(path == root or root in path.parents for root in (REPO, shared)):
        return os.path.relpath(path, REPO)
    return argument


def _module_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return spec.name if spec and spec.name else Path(sys.argv[0]).stem


def log_phases_only() -> None:
    """INFO logging for a benchmark's own phases; the libraries it drives (and dualsearch's per-step
    lines) only at WARNING, so a long run's log stays readable."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("sentence_transformers", "transformers", "bm25s", "faiss", "dualsearch", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def best_on_dev(runs: dict[str, dict]) -> str:
    """The fine-tuning run whose saved towers score best on dev (its report's nDCG@10 after training);
    ties go to the earlier run."""
    names = list(runs)
    return max(names, key=lambda name: (runs[name]["report"]["after"]["ndcg@10"], -names.index(name)))
