"""The segments section of docs/benchmarks.md: what one write costs against corpus size, what
segments cost a search (results/writes.json, with a figure), and BM25 over segments against bm25s
(results/lexical_segments.json)."""

from __future__ import annotations

from pathlib import Path

from bench.report_plots import plot_write_costs
from bench.report_tables import markdown_table, not_run, provenance, short_provenance

WRITES = ("add one", "replace one", "delete one", "add 100")
MODES = ("hybrid", "dense", "lexical")


def segments_section(
    writes: dict | None, lexical: dict | None, docs: Path | None = None, service: dict | None = None
) -> list[str]:
    lines = ["## Segments: what a write costs", "", "### One write against the corpus size", ""]
    if writes is None:
        lines += [not_run("writes", "python -m bench writes"), ""]
    else:
        lines += _writes_lines(writes, docs)
    lines += ["### The service's writes: under load, through SIGKILLs, with the real towers", ""]
    if service is None:
        lines += [not_run("service_writes", "python -m bench service_writes"), ""]
    else:
        lines += _service_lines(service)
    lines += ["### BM25 over segments against bm25s", ""]
    if lexical is None:
        return lines + [not_run("lexical_segments", "python -m bench lexical_segments"), ""]
    rows = []
    for collection, record in lexical.get("collections", {}).items():
        for engine, numbers in record.get("engines", {}).items():
            rows.append(
                [
                    collection,
                    engine,
                    numbers.get("ndcg@10"),
                    numbers.get("recall@100"),
                    numbers.get("largest_score_difference_from_bm25s"),
                    numbers.get("latency_ms_p50"),
                    numbers.get("latency_ms_p95"),
                ]
            )
    return lines + [
        provenance(lexical, "lexical_segments"),
        "",
        f"Lexical search, {lexical.get('split')} queries; `history` is the same documents written as "
        f"{lexical.get('segments')} segments with {lexical.get('rewrite_fraction'):.0%} of them deleted and written "
        "again:",
        "",
        markdown_table(
            ["collection", "engine", "nDCG@10", "Recall@100", "largest score difference", "p50 ms", "p95 ms"],
            rows,
            [0, 0, 4, 4, 7, 2, 2],
        ),
        "",
    ]


def _writes_lines(writes: dict, docs: Path | None) -> list[str]:
    sizes = writes.get("sizes", {})
    lines = [
        provenance(writes, "writes"),
        "",
        f"Median seconds of {writes.get('repeats')} runs, towers {writes.get('towers')} (no model time). "
        "`rewrite` is `optimize`, every document copied into one segment: what every write cost before "
        "segments. `1% re-index` is `reindex` with a corpus in which every hundredth document changed, and "
        "the bytes it wrote against those of a full build:",
        "",
        markdown_table(
            ["documents", *WRITES, "rewrite", "1% re-index s", "1% re-index bytes / build"],
            [
                [
                    int(size),
                    *(run.get("write_seconds_median", {}).get(name) for name in WRITES),
                    run.get("rewrite_seconds"),
                    run.get("reindex_1_percent", {}).get("seconds"),
                    run.get("reindex_1_percent", {}).get("share_of_build_bytes"),
                ]
                for size, run in sizes.items()
            ],
            [0, 3, 3, 3, 3, 1, 1, 4],
        ),
        "",
    ]
    if docs is not None and sizes:
        points = [
            {"documents": int(size), **run.get("write_seconds_median", {}), "rewrite": run.get("rewrite_seconds")}
            for size, run in sizes.items()
        ]
        plot_write_costs(points, docs / "bench_writes.png", short_provenance(writes))
        lines += ["![One write against the corpus size](bench_writes.png)", ""]
    lines += [
        "Hybrid search, one query at a time (p50 of 100), with ten segments as the service's refreshes leave "
        "them (no merge), and after `optimize`:",
        "",
        markdown_table(
            ["documents", "segments", "p50 ms", "p50 ms after optimize", "ratio"],
            [
                [
                    int(size),
                    run.get("search", {}).get("segments"),
                    run.get("search", {}).get("hybrid_p50_ms_unmerged"),
                    run.get("search", {}).get("hybrid_p50_ms_after_optimize"),
                    run.get("search", {}).get("ratio"),
                ]
                for size, run in sizes.items()
            ],
            [0, 0, 2, 2, 2],
        ),
        "",
    ]
    for size, run in sizes.items():
        compared = run.get("optimize_against_fresh_build")
        if compared:
            lines += [
                f"After `optimize` ({int(size):,} documents, a history of writes), against a fresh build of the same "
                "documents: top-10 of 100 queries (exact dense search: a fresh build trains other centroids):",
                "",
                markdown_table(
                    ["mode", "same top-10", "largest score difference"],
                    [
                        [
                            mode,
                            f"{compared.get(mode, {}).get('same_top10')}/{compared.get(mode, {}).get('queries')}",
                            compared.get(mode, {}).get("largest_score_difference"),
                        ]
                        for mode in MODES
                    ],
                    [0, 0, 7],
                ),
                "",
            ]
    return lines


def _service_lines(record: dict) -> list[str]:
    load, kills, real = record.get("load", {}), record.get("kills", []), record.get("real_towers")
    lines = [
        provenance(record, "service_writes"),
        "",
        f"A server over {record.get('documents', 0):,} documents with the test towers, the shipped refresh "
        f"interval; {load.get('writers')} writers and {load.get('readers')} readers for {load.get('seconds')} s:",
        "",
        markdown_table(
            [
                "writes",
                "reads",
                "failed",
                "write p50 ms",
                "write p95 ms",
                "read p50 ms",
                "read p95 ms",
                "adds missing",
                "deletes undone",
            ],
            [
                [
                    load.get("writes"),
                    load.get("reads"),
                    load.get("failed_requests"),
                    load.get("write_ms", {}).get("p50"),
                    load.get("write_ms", {}).get("p95"),
                    load.get("read_ms", {}).get("p50"),
                    load.get("read_ms", {}).get("p95"),
                    load.get("acknowledged_adds_missing"),
                    load.get("acknowledged_deletes_still_there"),
                ]
            ],
            [0, 0, 0, 1, 1, 1, 1, 0, 0],
        ),
        "",
    ]
    if kills:
        lost = sum(k.get("acknowledged_adds_missing", 0) + k.get("acknowledged_deletes_still_there", 0) for k in kills)
        verified = sum(1 for k in kills if k.get("verified"))
        acknowledged = sum(k.get("acknowledged", 0) for k in kills)
        lines += [
            f"The same load, the server killed (SIGKILL) {len(kills)} times at random moments, then started again: "
            f"{acknowledged:,} acknowledged writes, **{lost} lost**; the index verified after {verified} of "
            f"{len(kills)} restarts.",
            "",
        ]
    if real:
        lines += [
            f"With the real towers ({real.get('index')}), one document a request, {real.get('writes')} times: "
            f"acknowledged (202) in {real.get('acknowledged_seconds_median')} s (median, max "
            f"{real.get('acknowledged_seconds_max')} s); searchable, with `?wait=true` (200), in "
            f"{real.get('searchable_seconds_median')} s (median, max {real.get('searchable_seconds_max')} s).",
            "",
        ]
    return lines
