"""The sharding section of docs/benchmarks.md (results/sharding.json): SciFact split into shards,
searched against one index of the same corpus."""

from __future__ import annotations

from bench.report_tables import markdown_table, not_run, provenance


def sharding_section(record: dict | None) -> list[str]:
    lines = ["## A sharded index against one index", ""]
    if record is None:
        return lines + [not_run("sharding", "python -m bench sharding"), ""]
    shards = record["shards"]
    lines += [
        provenance(record, "sharding"),
        "",
        f"SciFact's index (default towers and settings) split into {len(shards)} shards of "
        f"{', '.join(f'{count:,}' for count in shards)} documents in {record['split_seconds']} s, nothing "
        f"encoded again; its {record['queries']} test queries searched one at a time on both, top {record['k']}. "
        "*Same*: the same ids in the same order, scores within 1e-5; *ties*: the same scores at every rank, "
        "ids apart only among equal scores. The times are the shards searched one after another in one "
        "process (docs/sharding.md).",
        "",
        markdown_table(
            [
                "mode",
                "same",
                "ties",
                "different",
                "largest score difference",
                "p50 one / shards (ms)",
                "p95 one / shards (ms)",
            ],  # fmt: skip
            [
                [
                    mode,
                    row["same"],
                    row["ties"],
                    row["different"],
                    f"{row['largest_score_difference']:.1e}",
                    f"{row['one_p50_ms']} / {row['sharded_p50_ms']}",
                    f"{row['one_p95_ms']} / {row['sharded_p95_ms']}",
                ]
                for mode, row in record["modes"].items()
            ],
        ),
        "",
    ]
    return lines
