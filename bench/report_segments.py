"""The segments section of docs/benchmarks.md: what one write costs against corpus size
(results/write_costs.json), and BM25 over segments against bm25s (results/lexical_segments.json)."""

from __future__ import annotations

from bench.report_tables import markdown_table, not_run, provenance

WRITES = ("add one", "replace one", "delete one", "add 100", "rewrite")


def segments_section(write_costs: dict | None, lexical: dict | None) -> list[str]:
    lines = ["## Segments: what a write costs", "", "### One write against the corpus size", ""]
    if write_costs is None:
        lines += [not_run("write_costs", "python -m bench write_costs"), ""]
    else:
        sizes = write_costs.get("sizes", {})
        lines += [
            provenance(write_costs, "write_costs"),
            "",
            f"Median seconds of {write_costs.get('repeats')} runs, towers {write_costs.get('towers')} (no model time); "
            "`rewrite` copies every document into one segment, what every write cost before segments:",
            "",
            markdown_table(
                ["documents", *WRITES],
                [
                    [int(size), *(run.get("write_seconds_median", {}).get(name) for name in WRITES)]
                    for size, run in sizes.items()
                ],
                [0, 3, 3, 3, 3, 3],
            ),
            "",
            "Hybrid search, one query at a time, with the segments 20 one-document writes left and after `optimize`:",
            "",
            markdown_table(
                ["documents", "segments", "p50 ms", "p50 ms after optimize"],
                [
                    [
                        int(size),
                        run.get("search", {}).get("segments_after_stream"),
                        run.get("search", {}).get("hybrid_p50_ms_with_those_segments"),
                        run.get("search", {}).get("hybrid_p50_ms_after_optimize"),
                    ]
                    for size, run in sizes.items()
                ],
                [0, 0, 2, 2],
            ),
            "",
        ]
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
