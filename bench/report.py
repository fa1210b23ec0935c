"""Regenerate docs/benchmarks.md, its figures and the README's table from results/*.json (no measuring).

    python -m bench.report [--results results] [--docs docs]

Reads zero_shot, finetune, hybrid, engine, ann_compare, scale, encoding and reindex results; a missing file
makes its section say "not run yet". Every table and figure says how its numbers were measured (the
command recorded in the JSON, the machine, the date). Ratios come from one run on one machine;
absolute times only hold for the machine they name.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.common import REPO, RESULTS_DIR
from bench.report_backends import backends_section, one_shot_section
from bench.report_hybrid import hybrid_section
from bench.report_plots import plot_encoding, plot_ndcg, plot_recall_qps
from bench.report_readme import write_headline_table
from bench.report_scaling import (
    click_log_section,
    click_training_section,
    ondisk_section,
    ray_section,
    similarity_section,
)
from bench.report_segments import segments_section
from bench.report_service import service_section
from bench.report_sharding import ray_serving_section, sharding_section
from bench.report_stdlib import default_index_now_lines, stdlib_towers_section
from bench.report_tables import (
    busy_note,
    dig,
    fastest_at,
    load_result,
    markdown_table,
    mib,
    not_run,
    percent,
    provenance,
    short_provenance,
)

logger = logging.getLogger(__name__)
RESULT_NAMES = (
    "zero_shot",
    "finetune",
    "engine",
    "ann_compare",
    "scale",
    "encoding",
    "reindex_incremental",
    "reindex_memory",
    "hybrid",
    "hybrid-zero-shot",
    "hybrid-finetuned",
    "service_load",
    "backends",
    "one_shot",
    "ray_encoding",
    "ondisk",
    "click_log",
    "finetune_similarity",
    "click_training",
    "writes",
    "service_writes",
    "lexical_segments",
    "stdlib_towers",
    "stdlib_search",
    "sharding",
    "ray_serving",
)
METRICS = ("ndcg@10", "recall@100", "mrr@10")
TARGET_OVERLAP = 0.95


def _busy(record: dict) -> list[str]:
    note = busy_note(record)
    return [note, ""] if note else []


def published_numbers(zero_shot: dict | None, collection: str) -> dict[str, float]:
    """Published nDCG@10 for ``collection``: as recorded in zero_shot.json, else bench.zero_shot's table."""
    recorded = dig(zero_shot, collection, "published_ndcg@10")
    if recorded:
        return recorded
    from bench.zero_shot import PUBLISHED_NDCG10

    return PUBLISHED_NDCG10.get(collection, {})


def quality_rows(zero_shot: dict | None, finetune: dict | None) -> list[dict]:
    """One dict per (collection, system): published numbers first, then ours."""
    collections = [c for c in ("scifact", "nfcorpus") if isinstance(dig(zero_shot, c), dict)]
    collections += [
        r["collection"] for r in dig(finetune, "runs", default=[]) if r.get("collection") not in collections
    ]
    rows = []
    for collection in dict.fromkeys(collections):
        for system, value in published_numbers(zero_shot, collection).items():
            rows.append(
                {
                    "collection": collection,
                    "system": f"{system} [published]",
                    "source": "published",
                    "ndcg@10": value,
                    "published": True,
                }
            )
        numbers = dig(zero_shot, collection)
        if isinstance(numbers, dict):
            nprobe = dig(numbers, "index", "default_nprobe")
            for key, system in (
                ("exact", "zero-shot towers, exact"),
                ("ivf_default_nprobe", f"zero-shot towers, IVF nprobe {nprobe}"),
            ):
                if isinstance(numbers.get(key), dict):
                    rows.append({"collection": collection, "system": system, "source": "zero_shot", **numbers[key]})
        for run in dig(finetune, "runs", default=[]):
            if run.get("collection") == collection and isinstance(run.get("test"), dict):
                rows.append(
                    {
                        "collection": collection,
                        "system": run["system"],
                        "source": "finetune",
                        **run["test"],
                        "superseded": run.get("superseded", False),
                    }
                )
    return rows


def quality_section(results: dict, docs: Path) -> list[str]:
    zero_shot, finetune = results.get("zero_shot"), results.get("finetune")
    lines = ["## Retrieval quality", ""]
    if zero_shot is None and finetune is None:
        return lines + [not_run("zero_shot"), "", not_run("finetune", "python bench/finetune.py"), ""]
    for name, record in (("zero_shot", zero_shot), ("finetune", finetune)):
        lines += [provenance(record, name) if record is not None else not_run(name), ""]
    rows = quality_rows(zero_shot, finetune)
    lines += [
        "Test splits, scored once. Published numbers (BEIR paper, MTEB) are beside ours; only nDCG@10 was "
        "published for them. `source` names the results file.",
        "",
        markdown_table(
            ["collection", "system", "source", "nDCG@10", "Recall@100", "MRR@10"],
            [[r["collection"], r["system"], r["source"], *(r.get(m) for m in METRICS)] for r in rows],
        ),
        "",
    ]
    bars = [r for r in rows if r.get("ndcg@10") is not None and not r.get("superseded")]  # the table keeps them
    if bars:
        footer = " ; ".join(short_provenance(r) for r in (zero_shot, finetune) if r is not None)
        plot_ndcg(bars, docs / "bench_ndcg.png", footer)
        lines += ["![nDCG@10 by system and collection](bench_ndcg.png)", ""]
    return lines


def engine_section(engine: dict | None) -> list[str]:
    lines = ["## Engine on SciFact", ""]
    if engine is None:
        return lines + [not_run("engine"), ""]
    lines += [provenance(engine, "engine"), ""]
    build, index = engine.get("build"), engine.get("index", {})
    lines.append(
        f"Index: `{index.get('factory')}`, {index.get('documents')} documents, nlist {index.get('nlist')}, "
        f"default nprobe {index.get('default_nprobe')}."
    )
    if isinstance(build, dict):
        lines += [
            "",
            markdown_table(
                ["documents", "documents/s (encoding)", "encode s", "index build s"],
                [
                    [
                        build.get("documents"),
                        build.get("documents_per_second"),
                        build.get("encode_seconds"),
                        build.get("index_build_seconds"),
                    ]
                ],
                [0, 1, 2, 3],
            ),
        ]
    else:
        lines += ["", f"Build: {build}."]
    latency = [
        [
            "IVF, default nprobe",
            *(
                dig(engine, "latency_default_nprobe", part, q)
                for part in ("end_to_end_ms", "faiss_ms")
                for q in ("p50", "p95")
            ),
        ],
        [
            "exact (brute force)",
            dig(engine, "latency_exact", "end_to_end_ms", "p50"),
            dig(engine, "latency_exact", "end_to_end_ms", "p95"),
            None,
            None,
        ],
    ]
    lines += [
        "",
        "One query at a time (ms):",
        "",
        markdown_table(
            ["search", "end-to-end p50", "end-to-end p95", "FAISS p50", "FAISS p95"], latency, [0, 2, 2, 3, 3]
        ),
        "",
        "IVF against exact search, all SciFact queries batched:",
        "",
        markdown_table(
            ["nprobe", "overlap@10", "queries/s (batched)"],
            [
                [c.get("nprobe"), c.get("overlap@10"), c.get("batch_queries_per_second")]
                for c in engine.get("overlap_vs_exact", [])
            ],
            [0, 4, 1],
        ),
        "",
    ]
    return lines


def ann_dataset_lines(dataset: dict, record: dict, docs: Path) -> list[str]:
    indexes = dataset.get("indexes", [])
    flat = next((row for row in indexes if row.get("knob") is None and row.get("runs")), None)
    flat_qps = dig(flat, "runs", 0, "batch_queries_per_second")
    flat_single = dig(flat, "runs", 0, "single_queries_per_second")
    summary, missed = [], False
    for row in indexes:
        if not row.get("runs"):
            continue
        best = fastest_at(row["runs"], TARGET_OVERLAP)
        comparable = flat is not None and row.get("vectors") == flat.get("vectors")
        setting = f"{row.get('knob')}={best.get('effort')}" if row.get("knob") else "-"
        if best.get("overlap@10", 0) < TARGET_OVERLAP:
            setting, missed = setting + " *", True
        summary.append(
            [
                row["index"],
                row.get("factory"),
                row.get("vectors"),
                row.get("build_seconds"),
                mib(row.get("index_bytes")),
                setting,
                best.get("overlap@10"),
                best.get("batch_queries_per_second"),
                best["batch_queries_per_second"] / flat_qps if comparable and flat_qps else None,
                best.get("single_p50_ms"),
                best.get("single_p95_ms"),
                best["single_queries_per_second"] / flat_single if comparable and flat_single else None,
                row.get("engine_parameter_overhead_ms"),
            ]
        )
    detail = [
        [
            row["index"],
            f"{row.get('knob')}={run.get('effort')}" if row.get("knob") else "exact",
            run.get("overlap@10"),
            run.get("batch_queries_per_second"),
            run.get("single_queries_per_second"),
            run.get("single_p50_ms"),
            run.get("single_p95_ms"),
        ]
        for row in indexes
        for run in row.get("runs", [])
    ]
    name = dataset.get("name", "dataset")
    plot_recall_qps(
        [{"label": row["index"], "points": row.get("runs", [])} for row in indexes],
        docs / f"bench_ann_{name}.png",
        f"{name}, {dataset.get('vectors', 0):,} vectors",
        short_provenance(record),
    )
    return [
        f"### {name}: {dataset.get('vectors', 0):,} vectors of {dataset.get('dimension')} dimensions, "
        f"{dataset.get('queries')} queries",
        "",
        f"Vectors: {dataset.get('source')}.",
        "",
        f"Fastest setting reaching overlap@10 >= {TARGET_OVERLAP}; *x Flat* is queries/s over Flat's on the same "
        "vectors in the same run (batched, then one query at a time):",
        "",
        markdown_table(
            [
                "index",
                "factory",
                "vectors",
                "build s",
                "size MiB",
                "setting",
                "overlap@10",
                "queries/s batched",
                "x Flat batched",
                "single p50 ms",
                "single p95 ms",
                "x Flat single",
                "engine ms/call",
            ],
            summary,
            [0, 0, 0, 1, 1, 0, 4, 1, 1, 3, 3, 1, 3],
        ),
        "",
        *([f"\\* never reached {TARGET_OVERLAP}: the most accurate setting measured is shown.", ""] if missed else []),
        "*engine ms/call*: what `dualsearch.index.ann.search_parameters` adds to every search call "
        "on top of the index's own time.",
        "",
        f"![overlap@10 against queries per second, {name}](bench_ann_{name}.png)",
        "",
        "<details><summary>Every setting measured</summary>",
        "",
        markdown_table(
            ["index", "setting", "overlap@10", "queries/s batched", "queries/s single", "p50 ms", "p95 ms"],
            detail,
            [0, 0, 4, 1, 1, 3, 3],
        ),
        "",
        "</details>",
        "",
    ]


def scale_lines(scale: dict | None) -> list[str]:
    lines = ["### IVF at scale (bench.scale)", ""]
    if scale is None:
        return lines + [not_run("scale"), ""]
    lines += [
        provenance(scale, "scale"),
        "",
        f"{scale.get('vectors', 0):,} synthetic vectors ({scale.get('data')}), `{scale.get('factory')}`, "
        "calibrated default "
        f"nprobe {scale.get('default_nprobe')}; built in {scale.get('build_seconds')} s; peak RSS "
        f"{dig(scale, 'peak_rss_mib', 'after_build')} MiB after building; exact search "
        f"{scale.get('exact_search_ms_per_query_batched')} ms per query (batched).",
        "",
        markdown_table(
            ["nprobe", "overlap@10", "p50 ms", "p95 ms", "queries/s single"],
            [
                [
                    c.get("nprobe"),
                    c.get("overlap@10"),
                    c.get("p50_ms"),
                    c.get("p95_ms"),
                    c.get("queries_per_second_single"),
                ]
                for c in scale.get("curve", [])
            ],
            [0, 4, 3, 3, 1],
        ),
        "",
    ]
    return lines


def ann_section(ann: dict | None, scale: dict | None, docs: Path) -> list[str]:
    lines = ["## ANN index types: speed against accuracy", ""]
    if ann is None:
        lines += [not_run("ann_compare"), ""]
    else:
        threads = ann.get("faiss_threads")
        if isinstance(threads, dict):
            threads = (
                f"{threads.get('build_and_batched')} for building and batched search, "
                f"{threads.get('single_query')} per single query"
            )
        lines += [
            provenance(ann, "ann_compare"),
            "",
            *_busy(ann),
            f"Overlap@10 is the share of the exact top 10 ({ann.get('exact', 'faiss.knn')}) that the index returns. "
            f"Batched: all queries in one call, median of {ann.get('repeats')}; single: one query per call. "
            f"FAISS threads: {threads}. Index size: bytes of the serialised index. Build: training plus adding.",
            "",
        ]
        for dataset in ann.get("datasets", []):
            lines += ann_dataset_lines(dataset, ann, docs)
    return lines + scale_lines(scale)


def encoding_section(encoding: dict | None, docs: Path) -> list[str]:
    lines = ["## Encoding throughput and the cost of each query stage", ""]
    if encoding is None:
        return lines + [not_run("encoding"), ""]
    rows = encoding.get("throughput", [])
    batch_sizes = sorted({r["batch_size"] for r in rows})
    groups = list(dict.fromkeys((r["side"], r["max_seq_length"]) for r in rows))
    lookup = {(r["side"], r["max_seq_length"], r["batch_size"]): r["texts_per_second"] for r in rows}
    tokens = encoding.get("token_lengths", {})
    lines += [
        provenance(encoding, "encoding"),
        "",
        *_busy(encoding),
        f"Towers `{encoding.get('model')}` on CPU, {encoding.get('torch_threads')} torch threads; model default max "
        f"sequence length {encoding.get('default_max_seq_length')}. Token counts (untruncated): documents median "
        f"{dig(tokens, 'documents', 'median')}, p95 {dig(tokens, 'documents', 'p95')}; queries median "
        f"{dig(tokens, 'queries', 'median')}, p95 {dig(tokens, 'queries', 'p95')}; texts longer than the maximum are "
        "truncated, and a batch is padded to its longest text.",
        "",
        "Texts per second (SciFact; through `DualEncoder.encode_documents` / `encode_queries`):",
        "",
        markdown_table(
            ["side", "max tokens", *[f"batch {b}" for b in batch_sizes]],
            [[side, length, *(lookup.get((side, length, b)) for b in batch_sizes)] for side, length in groups],
            [0, 0, *[1] * len(batch_sizes)],
        ),
        "",
    ]
    if rows:
        plot_encoding(rows, docs / "bench_encoding.png", short_provenance(encoding))
        lines += ["![texts per second by batch size](bench_encoding.png)", ""]
    stages = encoding.get("stages")
    if isinstance(stages, dict):
        total = dig(stages, "ms", "end_to_end", "p50")
        table = [
            [
                stage,
                *(dig(stages, "ms", stage, q) for q in ("p50", "p95", "mean")),
                percent((dig(stages, "ms", stage, "p50") or 0) / total) if total and stage != "end_to_end" else None,
            ]
            for stage in ("tokenize", "encode", "faiss_search", "fetch", "end_to_end")
        ]
        lines += [
            f"One query at a time, {stages.get('queries')} SciFact queries, top {stages.get('k')}, index "
            f"`{dig(stages, 'index', 'factory')}` at nprobe {dig(stages, 'index', 'nprobe')} (ms):",
            "",
            markdown_table(["stage", "p50", "p95", "mean", "share of end-to-end p50"], table, [0, 3, 3, 3, 3]),
            "",
            f"Slowest stage: **{stages.get('slowest_stage')}**. End to end is `Searcher.search` (the stages plus "
            "argument checks and result objects).",
            "",
        ]
    return lines


def reindex_section(results: dict) -> list[str]:
    lines = ["## Re-indexing", ""]
    incremental, memory = results.get("reindex_incremental"), results.get("reindex_memory")
    lines += ["### A re-index after 1% of SciFact changed, against a full build", ""]
    if incremental is None:
        lines += [not_run("reindex_incremental", "python -m bench reindex"), ""]
    else:
        lines += [
            provenance(incremental, "reindex_incremental"),
            "",
            markdown_table(
                ["documents", "changed", "full build s", "re-index s", "ratio", "target"],
                [
                    [
                        incremental.get(k)
                        for k in (
                            "documents",
                            "changed_documents",
                            "full_build_seconds",
                            "reindex_seconds",
                            "ratio",
                            "target_ratio",
                        )
                    ]
                ],
                [0, 0, 2, 2, 4, 2],
            ),
            "",
        ]
        if incremental.get("reindex_summary"):
            lines += [f"Re-index: {incremental['reindex_summary']}.", ""]
    lines += ["### Memory against corpus size", ""]
    if memory is None:
        return lines + [not_run("reindex_memory", "python -m bench reindex"), ""]
    runs = memory.get("runs", {})
    columns = list(dict.fromkeys(key for run in runs.values() for key in run))
    lines += [
        provenance(memory, "reindex_memory"),
        "",
        f"Synthetic corpora indexed in a fresh process ({memory.get('tower')}); MiB and seconds:",
        "",
        markdown_table(
            ["documents", *columns],
            [[int(n), *(run.get(c) for c in columns)] for n, run in runs.items()],
            [0, *[1] * len(columns)],
        ),
        "",
        f"200k/20k ratio {memory.get('ratio_200k_to_20k')} (target <= {memory.get('target_ratio')}).",
        "",
    ]
    return lines


def running_time_section(results: dict) -> list[str]:
    """Wall time of each benchmark as far as its results record it (a lower bound where partial)."""
    finetune_runs = dig(results, "finetune", "runs", default=[]) or []
    recorded = {
        "ann_compare": (dig(results, "ann_compare", "total_seconds"), "whole run"),
        "encoding": (dig(results, "encoding", "total_seconds"), "whole run"),
        "finetune": (sum(r.get("wall_seconds") or 0 for r in finetune_runs) or None, "sum of its runs"),
        "scale": (
            (dig(results, "scale", "generate_seconds") or 0) + (dig(results, "scale", "build_seconds") or 0) or None,
            "generate + build only (lower bound)",
        ),
        "reindex": (
            sum(
                (dig(numbers, "full_build_seconds") or 0)
                + (dig(numbers, "reindex_seconds") or 0)
                + sum(run.get("seconds") or 0 for run in (dig(numbers, "runs") or {}).values())
                for numbers in (results.get("reindex_incremental"), results.get("reindex_memory"))
                if numbers
            )
            or None,
            "builds, re-index and memory runs (lower bound)",
        ),
    }
    rows = [
        [name, seconds / 60 if seconds else None, note if seconds else "not recorded"]
        for name, (seconds, note) in recorded.items()
    ]
    return [
        "## How long the benchmarks take",
        "",
        "`python -m bench all` runs every script in turn, then this report; "
        "`--skip finetune,finetune_defaults,scale` leaves out the slowest. Wall minutes as recorded in the "
        "results (zero_shot and engine record no wall time):",
        "",
        markdown_table(["benchmark", "minutes", "what"], rows, [0, 1, 0]),
        "",
    ]


def render(results: dict[str, dict | None], docs: Path) -> str:
    """The whole of docs/benchmarks.md for already-loaded ``results``; writes the figures into ``docs``."""
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench report` from `results/*.json`; edit `bench/report.py`, not this file. "
        "Each section names the command, machine and date of its numbers. Ratios were measured side by side in one "
        "run; absolute times hold only for the machine named, under the load average recorded.",
        "",
    ]
    lines += quality_section(results, docs)
    hybrid_labels = ("hybrid", "hybrid-zero-shot", "hybrid-finetuned")
    lines += hybrid_section({label: results.get(label) for label in hybrid_labels}, docs)
    lines += engine_section(results.get("engine"))
    lines += ann_section(results.get("ann_compare"), results.get("scale"), docs)
    lines += encoding_section(results.get("encoding"), docs)
    lines += reindex_section(results)
    lines += segments_section(
        results.get("writes"), results.get("lexical_segments"), docs, results.get("service_writes")
    )
    lines += service_section(results.get("service_load"))
    lines += sharding_section(results.get("sharding"))
    lines += ray_serving_section(results.get("ray_serving"))
    lines += backends_section(results.get("backends"))
    lines += one_shot_section(results.get("one_shot"))
    lines += ray_section(results.get("ray_encoding"))
    lines += ondisk_section(results.get("ondisk"))
    lines += click_log_section(results.get("click_log"))
    lines += click_training_section(results.get("click_training"))
    lines += similarity_section(results.get("finetune_similarity"))
    lines += stdlib_towers_section(results.get("stdlib_towers"))
    lines += default_index_now_lines(results.get("stdlib_search"))
    lines += running_time_section(results)
    return "\n".join(lines).rstrip() + "\n"


def write_report(results_dir: Path = RESULTS_DIR, docs: Path = REPO / "docs", readme: Path | None = None) -> Path:
    """Read every results file there is and write ``docs/benchmarks.md`` and its PNGs, and the README's
    table of headline figures (``readme``: the repository's README.md when ``docs`` is its docs/)."""
    results = {name: load_result(results_dir, name) for name in RESULT_NAMES}
    docs.mkdir(parents=True, exist_ok=True)
    path = docs / "benchmarks.md"
    path.write_text(render(results, docs), encoding="utf-8")
    readme = readme or (REPO / "README.md" if docs.resolve() == (REPO / "docs").resolve() else None)
    if readme is not None and write_headline_table(readme, results_dir):
        logger.info("updated the figures in %s", readme)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="folder of the results/*.json files")
    parser.add_argument("--docs", type=Path, default=REPO / "docs", help="where benchmarks.md and the PNGs go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    print(f"wrote {write_report(args.results, args.docs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
