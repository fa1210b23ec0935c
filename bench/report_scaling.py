"""The scale-out sections of docs/benchmarks.md: encoding on Ray (results/ray_encoding.json) and indexes
with their lists on disk (results/ondisk.json)."""

from __future__ import annotations

from bench.report_tables import dig, markdown_table, not_run, provenance

RUN_LABELS = {
    "local-1": "local, 1 thread",
    "local-2": "local, 2 threads",
    "ray-1": "Ray, 1 worker x 1 thread",
    "ray-2": "Ray, 2 workers x 1 thread",
    "driver": "driver alone (instant encoder)",
}


def ray_section(record: dict | None) -> list[str]:
    lines = ["## Encoding on Ray", ""]
    if record is None:
        return lines + [not_run("ray_encoding", "python -m bench ray_encoding"), ""]
    runs = record.get("runs") or {}
    rows = [
        [
            RUN_LABELS.get(name, name),
            run.get("documents_per_second"),
            run.get("write_seconds"),
            run.get("start_seconds"),
        ]
        for name, run in runs.items()
    ]
    overhead = record.get("ray_overhead_at_equal_cores") or {}
    model = record.get("model") or {}
    lines += [
        provenance(record, "ray_encoding"),
        "",
        f"{record.get('documents'):,} SciFact documents, {record.get('towers')}; documents/s of the write phase "
        "(reading to vectors file), each run in its own process:",
        "",
        markdown_table(["run", "documents/s", "write s", "start s"], rows, [0, 2, 1, 1]),
        "",
        "Ray's overhead at equal cores (1 - Ray's rate / the local rate): "
        + ", ".join(f"{name.replace('_vs_', ' against ')} {value:.1%}" for name, value in overhead.items())
        + ".",
        "",
        f"Model: one worker encodes {model.get('worker_documents_per_second')} documents/s; the driver's own "
        f"work costs {model.get('driver_seconds_per_document')} s a document, a ceiling of "
        f"{model.get('driver_ceiling_documents_per_second')} "
        f"documents/s reached at about {model.get('workers_where_the_driver_saturates')} workers.",
        "",
        markdown_table(
            ["machines", "workers", "documents/s", "driver-bound", "hours for 10M", "hours for 100M"],
            [
                [
                    row.get("machines"),
                    row.get("workers"),
                    row.get("documents_per_second"),
                    "yes" if row.get("driver_bound") else "no",
                    row.get("hours_10M"),
                    row.get("hours_100M"),
                ]
                for row in model.get("by_machines") or []
            ],
            [0, 0, 1, 0, 1, 1],
        ),
        "",
        f"Not included: {model.get('not_included')}.",
        "",
    ]
    return lines


def ondisk_section(record: dict | None) -> list[str]:
    lines = ["## Indexes with their lists on disk", ""]
    if record is None:
        return lines + [not_run("ondisk", "python -m bench ondisk"), ""]
    rows = []
    for kind, label in (("memory", "in memory"), ("disk", "on disk (`--on-disk`)")):
        build, search = dig(record, kind, "build") or {}, dig(record, kind, "search") or {}
        after = search.get("memory_after_queries_mib") or {}
        limited = dig(record, kind, "search_under_limit")
        rows.append(
            [
                label,
                build.get("build_seconds"),
                build.get("build_peak_rss_mib"),
                build.get("build_peak_anonymous_mib"),
                search.get("p50_ms"),
                search.get("p95_ms"),
                after.get("rss"),
                after.get("anonymous"),
                f"p50 {limited.get('p50_ms')} ms over {limited.get('timed_queries')} queries, "
                f"peak {limited.get('cgroup_peak_mib')} MiB"
                if isinstance(limited, dict)
                else limited,
            ]
        )
    lines += [
        provenance(record, "ondisk"),
        "",
        f"{record.get('vectors'):,} synthetic {record.get('dimension')}-d vectors, "
        f"`{dig(record, 'memory', 'build', 'factory')}`, {record.get('queries')} queries one at a time at nprobe "
        f"{dig(record, 'memory', 'search', 'nprobe')} (the smallest reaching overlap@10 "
        f"{record.get('target_overlap')}); memory in MiB; the last column searches again in a process held to "
        f"{record.get('limit_mib')} MiB (25% of the in-memory index's resident memory):",
        "",
        markdown_table(
            [
                "lists",
                "build s",
                "build peak RSS",
                "build peak anonymous",
                "p50 ms",
                "p95 ms",
                "RSS after queries",
                "anonymous after queries",
                "under the limit",
            ],
            rows,
            [0, 1, 0, 0, 2, 2, 0, 0, 0],
        ),
        "",
    ]
    return lines


def click_log_section(record: dict | None) -> list[str]:
    """The simulated click log's parameters and statistics (training on it is reported once it runs)."""
    lines = ["## The simulated click log", ""]
    if record is None:
        return lines + [not_run("click_log", "python -m bench click_log"), ""]
    parameters, statistics = record.get("parameters") or {}, record.get("statistics") or {}
    lines += [
        provenance(record, "click_log"),
        "",
        f"{record.get('collection')}. Parameters: "
        + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in parameters.items())
        + "."
        + (f" Log SHA-256 `{record['log_sha256'][:16]}…`." if record.get("log_sha256") else ""),
        "",
        markdown_table(["statistic", "value"], [[name.replace("_", " "), value] for name, value in statistics.items()]),
        "",
    ]
    return lines


def similarity_section(record: dict | None) -> list[str]:
    """Towers trained and indexed with cosine, dot product and Euclidean distance on SciFact."""
    lines = ["## Cosine, dot product or Euclidean distance", ""]
    if record is None:
        return lines + [not_run("finetune_similarity", "python -m bench finetune_similarity"), ""]
    chosen = record.get("chosen_on_dev")
    rows = []
    for name, run in (record.get("runs") or {}).items():
        report = run.get("report") or {}
        scale = dig(run, "config", "scale")
        rows.append(
            [
                name + (" (chosen on dev)" if name == chosen else ""),
                scale if scale is not None else (20.0 if name == "cosine" else 1.0),  # unset: the defaults of the time
                dig(report, "before", "ndcg@10"),
                dig(report, "after", "ndcg@10"),
                dig(run, "test", "ndcg@10"),
                dig(run, "test", "recall@100"),
                round(run["wall_seconds"] / 60, 1) if run.get("wall_seconds") is not None else None,
            ]
        )
    lines += [
        provenance(record, "finetune_similarity"),
        "",
        f"`dualsearch finetune {record.get('collection')} --out MODEL [--similarity S]` with the recipe's defaults "
        "otherwise; dev is the held-out part of train, test scored once per run after it trained "
        f"(towers alone, Flat exact search, {record.get('test_precision')}). Dev *before* is the base towers "
        "compared the same way (for dot product and Euclidean distance, all-MiniLM-L6-v2 without its Normalize).",
        "",
        markdown_table(
            [
                "similarity",
                "loss scale",
                "dev nDCG@10 before",
                "dev nDCG@10 after",
                "test nDCG@10",
                "test Recall@100",
                "minutes",
            ],
            rows,
            [0, 3, 4, 4, 4, 4, 1],
        ),
        "",
    ]
    for name, earlier in (record.get("replaced_runs") or {}).items():
        for run in earlier:
            scale = dig(run, "config", "scale")  # unset before the scale was matched: 1 for dot and euclidean
            lines += [
                f"Replaced by the run above: {name} with loss scale {1 if scale is None else scale} "
                f"(the default then), dev nDCG@10 {dig(run, 'report', 'after', 'ndcg@10', default=0):.4f}, "
                f"test {dig(run, 'test', 'ndcg@10', default=0):.4f}.",
                "",
            ]
    return lines


CLICK_RUN_LABELS = {
    "sampled": "sampled (mined and in-batch)",
    "impressions": "impressions (shown, not opened)",
    "mixed": "mixed (one of each)",
}


def click_training_section(record: dict | None) -> list[str]:
    """Towers trained on the simulated click log: negatives by source, with and without logQ."""
    lines = ["## Training on the click log", ""]
    if record is None:
        return lines + [not_run("click_training", "python -m bench click_training"), ""]
    chosen = record.get("chosen_on_dev")
    zero = record.get("zero_shot") or {}
    rows = [["zero-shot towers", "", None, None, "", zero.get("ndcg@10"), dig(zero, "cold_start", "ndcg@10"), None]]
    runs = record.get("runs") or {}
    planned = [name for name in record.get("runs_planned") or [] if name in runs]
    for name in planned + [name for name in runs if name not in planned]:  # the planned order, however resumed
        run = runs[name]
        negatives, _, logq = name.partition("-")
        report = run.get("report") or {}
        rows.append(
            [
                CLICK_RUN_LABELS.get(negatives, negatives) + (" (chosen on dev)" if name == chosen else ""),
                "yes" if logq else "no",
                dig(report, "before", "ndcg@10"),
                dig(report, "after", "ndcg@10"),
                _alphas(dig(report, "selection", "alphas")),
                dig(run, "test", "ndcg@10"),
                dig(run, "test", "cold_start", "ndcg@10"),
                round(run["wall_seconds"] / 60, 1) if run.get("wall_seconds") is not None else None,
            ]
        )
    lines += [
        provenance(record, "click_training"),
        "",
        "`dualsearch finetune LOG --corpus nfcorpus --out MODEL --negatives N --logq|--no-logq` on the log above, "
        "the recipe's defaults otherwise; dev is NFCorpus's dev judgements, test scored once per model (towers alone, "
        f"Flat exact search, {record.get('test_precision')}). Dev *before* is the base towers at the document "
        "length the run saved (chosen on dev). *Cold start*: the "
        f"{record.get('cold_start_test_queries')} test queries none of whose relevant documents was clicked "
        "in the log. *α*: the interpolation weights (query/document) chosen on dev."
        + (f" Every run used the log with SHA-256 `{record['log_sha256'][:16]}…`." if record.get("log_sha256") else ""),
        "",
        *_unfinished(record),
        markdown_table(
            [
                "negatives",
                "logQ",
                "dev nDCG@10 before",
                "dev nDCG@10 after",
                "α",
                "test nDCG@10",
                "cold-start nDCG@10",
                "minutes",
            ],
            rows,
            [0, 0, 4, 4, 0, 4, 4, 1],
        ),
        "",
    ]
    return lines


def _alphas(alphas: dict | None) -> str:
    """Per-tower interpolation weights as 'query/document'; a tied model's one weight alone."""
    if not alphas:
        return ""
    return "/".join(str(alphas[tower]) for tower in ("query", "document") if tower in alphas) or str(alphas)


def _unfinished(record: dict) -> list[str]:
    """A warning line while fewer runs than planned are in: the dev choice is among those only."""
    done, planned = len(record.get("runs") or {}), len(record.get("runs_planned") or [])
    if done >= planned:
        return []
    return [f"**Unfinished: {done} of {planned} runs so far; the dev choice is among these only.**", ""]
