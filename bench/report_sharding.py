"""The sharding section of docs/benchmarks.md (results/sharding.json, results/ray_serving.json):
SciFact split into shards, searched against one index of the same corpus, in one process and on Ray Serve."""

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


def ray_serving_section(record: dict | None) -> list[str]:
    lines = ["### The shards on Ray Serve", ""]
    if record is None:
        return lines + [not_run("ray_serving", "python -m bench ray_serving"), ""]
    single, ray, killed, write = record["single_process"], record["ray"], record["replica_killed"], record["write"]
    same = record["same_as_one_index"]
    lines += [
        provenance(record, "ray_serving"),
        "",
        f"SciFact in {record['shards']} shards behind `dualsearch serve --ray` (1 replica a shard), against "
        f"`dualsearch serve` on the one index, both on this machine; one client, one request at a time, "
        f"{single['hybrid']['requests']} test queries in each mode (top 10). Hybrid runs first, when the ingress "
        "knows no query term yet, so most of its queries take two rounds to the shards (statistics, then "
        "candidates); dense needs no term, and lexical runs last, when it knows them all (one round):",
        "",
        markdown_table(
            [
                "mode",
                "one server p50 / p95 (ms)",
                "--ray p50 / p95 (ms)",
                "overhead p50 (ms)",
                "same top 10 as one index",
                "largest score difference",
            ],
            [
                [
                    mode,
                    f"{single[mode]['p50_ms']:.1f} / {single[mode]['p95_ms']:.1f}",
                    f"{ray[mode]['p50_ms']:.1f} / {ray[mode]['p95_ms']:.1f}",
                    f"{overhead:.1f}",
                    f"{same[mode]['same_top_10']} / {same[mode]['queries']}",
                    f"{same[mode]['max_score_difference']:.1g}",
                ]
                for mode, overhead in record["fan_out_overhead_by_mode_p50_ms"].items()
            ],
        ),  # fmt: skip
        "",
        f"Fan-out overhead at the p50, in the default mode (hybrid): **{record['fan_out_overhead_p50_ms']} ms**. "
        f"`GET /health`, which calls no shard, costs {record['ray']['health']['p50_ms']} ms at the p50 through "
        f"`--ray` against {record['single_process']['health']['p50_ms']} ms from one server: "
        f"{record['health_overhead_p50_ms']} ms of the overhead is Serve's proxy and the ingress alone. "
        + _floor(record["serve_floor"])
        + f"With 2 replicas a shard and 16 clients, one replica of shard 0 killed at {killed['at_seconds']:.0f} s: "
        f"**{killed['errors']} failed** of {killed['requests']} requests (p50 {killed['latency_ms']['p50']} ms). "
        + _writes(write),
        "",
    ]
    return lines + _cost_model(record.get("cost_model"))


def _writes(write: dict) -> str:
    """The two writes through the ingress, the first of which loads its writer's document tower."""
    first, second = write["first"], write["second"]
    return (
        f"Two documents added through the ingress, one after the other: answered {first['status']} (logged by "
        f"their shard) in {first['acknowledged_seconds']} and {second['acknowledged_seconds']} s, found by a "
        f"search {first['searchable_seconds']} s after the first was sent (its writer loads the document tower) "
        f"and {second['searchable_seconds']} s after the second."
    )


def _floor(floor: dict) -> str:
    """What Serve itself costs here (bench/serve_floor.py)."""
    return (
        f"Serve itself, with nothing to compute (`python -m bench.serve_floor`): a request through its proxy to an "
        f"ingress that calls nothing takes {floor['nothing']['p50_ms']} ms at the p50, and one with a round of "
        f"trivial calls to {floor['deployments']} deployments {floor['round']['p50_ms']} ms: a round costs "
        f"{floor['round_p50_ms']} ms here before any search. "
    )


def _cost_model(model: dict | None) -> list[str]:
    """The cost model's table: shards, memory per shard by encoding, a query's expected p50."""
    if not model:
        return []
    encodings = list(model["rows"][0]["memory_gib"])
    return [
        "#### What 10M, 100M and 1B documents take",
        "",
        f"Computed by the benchmark from measured figures, not measured at that size: shards of "
        f"{model['shard_documents']:,} documents (the size `python -m bench scale` measured, results/scale.json), "
        f"each shard's inverted lists in memory by encoding (FAISS's code sizes, ids included), and a query's "
        f"expected p50: the per-shard IVF-Flat search at nprobe {model['nprobe']} (p95 {model['per_shard_p95_ms']} ms: "
        f"a query waits for its slowest shard) plus the fan-out overhead above ({model['overhead_ms']} ms). SQ8 and "
        "PQ search faster than Flat per shard, so their p50 is lower than the column says. The scale run measured "
        "a shard's p50 and p95 only, so one figure stands for 10 to 1,000 shards; with 1,000 the median query waits "
        "for a shard further out in its tail, and the column understates it.",
        "",
        markdown_table(
            [
                "documents",
                "shards",
                "replicas",
                "replica processes",
                *(f"{name} GiB a shard" for name in encodings),
                "expected p50 (ms)",
            ],  # fmt: skip
            [
                [
                    f"{row['documents']:,}",
                    f"{row['shards']:,}",
                    row["replicas"],
                    f"{row['processes']:,}",
                    *(f"{row['memory_gib'][name]:.2f}" for name in encodings),
                    f"{row['expected_p50_ms']:.1f}",
                ]  # fmt: skip
                for row in model["rows"]
            ],
        ),
        "",
    ]
