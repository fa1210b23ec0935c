"""The README's one table of headline figures, rendered from results/*.json (no measuring).

``python -m bench report`` writes it between the README's two marker lines; tests/test_readme.py checks
that the README holds exactly what :func:`headline_table` renders from today's results, so no figure
in the README is copied by hand. A missing results file gives a row that says how to make it.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.report_tables import dig, load_result

BEGIN = "<!-- figures: written by `python -m bench report` from results/*.json; do not edit -->"
END = "<!-- end of figures -->"
RESULT_NAMES = ("first_run", "hybrid-zero-shot", "hybrid-finetuned", "stdlib_search", "backends", "one_shot")
COLLECTIONS = {"scifact": "SciFact", "nfcorpus": "NFCorpus"}


def _ndcg(record: dict | None, collection: str, label: str) -> float | None:
    """nDCG@10 of the test row whose label starts with ``label`` (the hybrid bench names its rows)."""
    rows = dig(record, "test", collection, default={}) or {}
    found = [values for name, values in rows.items() if name.startswith(label)]
    return found[0].get("ndcg@10") if found else None


def _quality_rows(zero_shot: dict | None, finetuned: dict | None) -> list[str]:
    rows = []
    for collection, name in COLLECTIONS.items():
        default = _ndcg(zero_shot, collection, "chosen default")
        towers = _ndcg(zero_shot, collection, "today: truncated")
        bm25 = _ndcg(zero_shot, collection, "lexical")
        tuned = _ndcg(finetuned, collection, "chosen default")
        if default is None:
            rows.append(f"| {name}, nDCG@10 (test) | not run yet: `python -m bench hybrid --fixed --label zero-shot` |")
            continue
        text = f"**{default:.4f}** default search, against {towers:.4f} for the towers alone and {bm25:.4f} for BM25"
        if tuned is not None:
            text += f"; **{tuned:.4f}** with towers fine-tuned on its train split"
        rows.append(f"| {name}, nDCG@10 (test) | {text} |")
    return rows


def _first_run_rows(first_run: dict | None) -> list[str]:
    run = dig(first_run, "make_run")
    if not run:
        return ["| a fresh clone's `make run` | not run yet: `python -m bench first_run` |"]
    rows = [
        f"| a fresh clone's `make run`, to the first answer | {run['first_answer_seconds']:.0f} s (installing, "
        f"building the default index once, serving), a {run['venv_mib']:,} MiB virtual environment"
        f"{_baseline(first_run)} |"
    ]
    test = dig(first_run, "make_test")
    if test:
        status = "passed" if test["exit_code"] == 0 else f"failed (exit {test['exit_code']})"
        rows.append(f"| a fresh clone's `make test` | {test['seconds'] / 60:.0f} min, {status} |")
    return rows


def _baseline(first_run: dict) -> str:
    """The same wait at an earlier commit, timed in the same run, when there is one."""
    baseline = dig(first_run, "baseline", "first_answer_seconds")
    commit = dig(first_run, "baseline", "commit")
    return "" if baseline is None else f" ({baseline:.0f} s at {str(commit)[:7]} in the same run)"


def _stdlib_row(stdlib: dict | None) -> str:
    metrics = dig(stdlib, "metrics")
    if not metrics:
        return "| the default index | not run yet: `python -m bench stdlib_search` |"
    questions = len(dig(stdlib, "per_query", default=[]) or [])
    return (
        f"| the default index (the standard library docs), {questions} everyday questions | "
        f"MRR@10 {metrics['mrr@10']:.4f}, the right answer in the top 5 for {metrics['success@5']:.0%}; "
        f"{stdlib['documents']:,} documents |"
    )


def _speed_row(backends: dict | None, one_shot: dict | None) -> str:
    backend = dig(backends, "default_backend")
    query = dig(backends, "query_latency", backend, "2_threads", "default (hybrid)", "p50_ms")
    process = dig(one_shot, "processes", "search (light: ONNX query tower)", "median_s")
    if query is None or process is None:
        return "| one query | not run yet: `python -m bench backends` and `python -m bench one_shot` |"
    return (
        f"| one query (SciFact, default search) | {query:.1f} ms p50 in a running process (towers on {backend}); "
        f"{process:.2f} s for `dualsearch search` as a whole process (no torch loaded) |"
    )


def headline_table(results_dir: Path) -> str:
    """The README's table, from the results in ``results_dir``."""
    results = {name: load_result(results_dir, name) for name in RESULT_NAMES}
    rows = [
        "| what | figure |",
        "|---|---|",
        *_first_run_rows(results["first_run"]),
        *_quality_rows(results["hybrid-zero-shot"], results["hybrid-finetuned"]),
        _stdlib_row(results["stdlib_search"]),
        _speed_row(results["backends"], results["one_shot"]),
    ]
    sources = ", ".join(f"results/{name}.json" for name in RESULT_NAMES)
    return "\n".join(rows) + f"\n\nFrom {sources}; how each was measured: [docs/benchmarks.md](docs/benchmarks.md)."


def with_headline_table(readme: str, table: str) -> str:
    """``readme`` with the text between its marker lines replaced by ``table``."""
    pattern = re.compile(re.escape(BEGIN) + r"\n(.*?\n)?" + re.escape(END), re.DOTALL)
    if not pattern.search(readme):
        raise ValueError("README.md has no figures markers: put the two marker lines where the table goes")
    return pattern.sub(lambda _: f"{BEGIN}\n{table}\n{END}", readme)


def write_headline_table(readme_path: Path, results_dir: Path) -> bool:
    """Rewrite the README's table from the results; True when it changed."""
    text = readme_path.read_text(encoding="utf-8")
    updated = with_headline_table(text, headline_table(results_dir))
    if updated != text:
        readme_path.write_text(updated, encoding="utf-8")
    return updated != text
