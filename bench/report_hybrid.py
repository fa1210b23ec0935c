"""The report's section on whole documents: passages, BM25 and hybrid search (results/hybrid*.json)."""

from __future__ import annotations

from pathlib import Path

from bench.report_plots import plot_ndcg
from bench.report_tables import markdown_table, not_run, provenance, short_provenance

METRICS = ("ndcg@10", "recall@100", "mrr@10")


def dev_table(record: dict) -> list[str]:
    """nDCG@10 on the dev splits for every index variant and search (what the default was chosen on)."""
    searches = list(next(iter(next(iter(record["dev"].values())).values())))
    rows = [
        [collection, variant, *(by_search[s]["ndcg@10"] for s in searches)]
        for collection, variants in record["dev"].items()
        for variant, by_search in variants.items()
    ]
    splits = ", ".join(f"{c} {s}" for c, s in record["dev_splits"].items())
    return [
        f"Dev nDCG@10 ({splits}), on which the default was chosen:",
        "",
        markdown_table(["collection", "index", *searches], rows),
        "",
    ]


def test_table(record: dict) -> list[str]:
    rows = []
    for collection, systems in record["test"].items():
        for system, metrics in systems.items():
            cost = record["costs"][collection][system]
            rows.append(
                [
                    collection,
                    system,
                    *(metrics[m] for m in METRICS),
                    cost["latency_ms"]["p50"],
                    cost["latency_ms"]["p95"],
                    cost["latency_p50_ratio"],
                    cost["index_bytes_ratio"],
                    cost.get("build_seconds_ratio"),
                ]
            )
    headers = [
        "collection",
        "system",
        "nDCG@10",
        "Recall@100",
        "MRR@10",
        "p50 ms",
        "p95 ms",
        "p50 x today",
        "size x today",
        "build x today",
    ]
    return [
        "Test splits, scored once with the settings above. *x today*: ratio to the truncated dense "
        "engine measured in the same run (single queries, one at a time).",
        "",
        markdown_table(headers, rows),
        "",
    ]


def chosen_text(chosen: dict) -> str:
    """The chosen index and search: one for every collection (older records), or per collection (the
    defaults of each collection's own towers).

    Example:
        >>> chosen_text({"index": "passages-full", "search": "dense", "settings": {"mode": "dense"}})
        "index `passages-full`, search `dense` (`{'mode': 'dense'}`)"
        >>> chosen_text({"nfcorpus": {"index": "p", "search": "dense", "settings": {}}})
        'nfcorpus: index `p`, search `dense` (`{}`)'
    """
    if "index" in chosen:
        return f"index `{chosen['index']}`, search `{chosen['search']}` (`{chosen['settings']}`)"
    return "; ".join(f"{collection}: {chosen_text(each)}" for collection, each in chosen.items())


def hybrid_section(records: dict[str, dict | None], docs: Path) -> list[str]:
    lines = ["## Whole documents: passages, BM25 and hybrid search", ""]
    present = {label: record for label, record in records.items() if record is not None}
    if not present:
        return lines + [not_run("hybrid"), ""]
    for label, record in present.items():
        chosen = record["chosen"]
        model = record["model"]
        towers = ", ".join(f"{c}: {m}" for c, m in model.items()) if isinstance(model, dict) else model
        lines += [
            f"### Towers: {towers} ({label})",
            "",
            provenance(record, label),
            "",
            f"{'The shipped defaults' if record.get('fixed') else 'Chosen on dev'}: {chosen_text(chosen)}.",
            "",
        ]
        lines += (dev_table(record) if record.get("dev") and any(record["dev"].values()) else []) + test_table(record)
        bars = [
            {"collection": collection, "system": system, "ndcg@10": metrics["ndcg@10"]}
            for collection, systems in record["test"].items()
            for system, metrics in systems.items()
        ]
        image = f"bench_{label.replace('_', '-')}.png"
        plot_ndcg(bars, docs / image, short_provenance(record))
        lines += [f"![nDCG@10 of truncated, passages, BM25 and hybrid search]({image})", ""]
    return lines
