"""The report's figures (matplotlib, Agg backend), each drawn from already-measured numbers.

Every function takes plain lists/dicts (what the report extracted from results/*.json), writes one
PNG and returns its path; each figure carries a footer saying how its numbers were measured.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)
DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path, footer: str) -> Path:
    figure.text(0.01, 0.01, footer, fontsize=7, color="0.35", ha="left", va="bottom", wrap=True)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    _pyplot().close(figure)
    logger.info("wrote %s", path)
    return path


def plot_ndcg(bars: Sequence[dict], path: Path, footer: str = "") -> Path:
    """Grouped bars of nDCG@10: one group per collection, one bar per system.

    ``bars``: dicts with ``collection``, ``system``, ``ndcg@10`` and ``published`` (bool; published
    numbers are hatched so they are never mistaken for ours).
    """
    plt = _pyplot()
    collections = list(dict.fromkeys(bar["collection"] for bar in bars))
    systems = list(dict.fromkeys(bar["system"] for bar in bars))
    value = {(bar["collection"], bar["system"]): bar for bar in bars}
    width = 0.8 / max(1, len(systems))
    figure, axes = plt.subplots(figsize=(max(7.5, 1.5 + 0.5 * len(systems) * len(collections)), 5.6))
    colours = plt.get_cmap("tab10")
    for number, system in enumerate(systems):
        xs, ys, published = [], [], False
        for group, collection in enumerate(collections):
            bar = value.get((collection, system))
            if bar is not None:
                xs.append(group + (number - (len(systems) - 1) / 2) * width)
                ys.append(bar["ndcg@10"])
                published = published or bool(bar.get("published"))
        drawn = axes.bar(
            xs,
            ys,
            width * 0.95,
            label=system,
            color=colours(number % 10),
            hatch="//" if published else None,
            edgecolor="white" if published else None,
        )
        axes.bar_label(drawn, fmt="%.3f", fontsize=6, rotation=90, padding=2)
    axes.set_xticks(range(len(collections)), collections)
    axes.set_ylabel("nDCG@10 (test split)")
    axes.set_ylim(0, min(1.0, max((bar["ndcg@10"] for bar in bars), default=1) * 1.15))
    axes.set_title("Retrieval quality by system (hatched: published numbers)")
    axes.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, path, footer)


def plot_recall_qps(curves: Sequence[dict], path: Path, title: str, footer: str = "") -> Path:
    """Overlap@10 against queries per second, one line per index type, batched and single-query panels.

    ``curves``: dicts with ``label`` and ``points``, a list of dicts holding ``overlap@10``,
    ``batch_queries_per_second``, ``single_queries_per_second`` and ``effort`` (nprobe/efSearch).
    """
    plt = _pyplot()
    figure, panels = plt.subplots(1, 2, figsize=(11, 4.6), sharex=True)
    markers = "osD^vP*X"
    for axes, key, name in zip(
        panels,
        ("batch_queries_per_second", "single_queries_per_second"),
        ("batched (all queries in one call)", "one query at a time"),
    ):
        for number, curve in enumerate(curves):
            points = sorted((p for p in curve["points"] if p.get(key)), key=lambda p: p["overlap@10"])
            if not points:
                continue
            xs, ys = [p["overlap@10"] for p in points], [p[key] for p in points]
            single_point = len(points) == 1  # an exact index: one setting, drawn large
            axes.plot(
                xs,
                ys,
                marker="*" if single_point else markers[number % len(markers)],
                label=curve["label"],
                linewidth=1.2,
                markersize=12 if single_point else 4,
                color="black" if single_point else None,
            )
            for point in points:
                if point.get("effort") is not None:
                    axes.annotate(
                        str(point["effort"]),
                        (point["overlap@10"], point[key]),
                        fontsize=6,
                        textcoords="offset points",
                        xytext=(3, 3),
                    )
        axes.set_yscale("log")
        axes.set_xlabel("overlap@10 with exact search (recall of the true top 10)")
        axes.set_ylabel("queries per second (log)")
        axes.set_title(name, fontsize=10)
        axes.grid(True, which="both", alpha=0.3)
    panels[0].legend(fontsize=8, loc="lower left")
    figure.suptitle(f"{title}: speed against accuracy (labels: nprobe / efSearch)", fontsize=11)
    return _save(figure, path, footer)


def plot_encoding(rows: Sequence[dict], path: Path, footer: str = "") -> Path:
    """Texts per second against batch size, one line per (side, max sequence length).

    ``rows``: dicts with ``side``, ``max_seq_length``, ``batch_size`` and ``texts_per_second``.
    """
    plt = _pyplot()
    sides = list(dict.fromkeys(row["side"] for row in rows))
    figure, panels = plt.subplots(1, max(1, len(sides)), figsize=(5.2 * max(1, len(sides)), 4.2), squeeze=False)
    for axes, side in zip(panels[0], sides):
        lengths = sorted({row["max_seq_length"] for row in rows if row["side"] == side})
        for length in lengths:
            points = sorted(
                (r for r in rows if r["side"] == side and r["max_seq_length"] == length), key=lambda r: r["batch_size"]
            )
            axes.plot(
                [p["batch_size"] for p in points],
                [p["texts_per_second"] for p in points],
                marker="o",
                label=f"max {length} tokens",
            )
        axes.set_xscale("log", base=2)
        sizes = sorted({row["batch_size"] for row in rows if row["side"] == side})
        axes.set_xticks(sizes, [str(size) for size in sizes])
        axes.set_xlabel("batch size")
        axes.set_ylabel(f"{side} per second")
        axes.set_title(f"{side.capitalize()} encoded per second", fontsize=10)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
    return _save(figure, path, footer)


def plot_write_costs(rows: Sequence[dict], path: Path, footer: str = "") -> Path:
    """Seconds of one write against the corpus size (log-log), with what a whole rewrite costs.

    ``rows``: dicts with ``documents`` and, per operation, its seconds (``add one``, ``delete one``,
    ``rewrite``, ...).
    """
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    rows = sorted(rows, key=lambda row: row["documents"])
    operations = [name for name in rows[0] if name != "documents"] if rows else []
    for name in operations:
        points = [(row["documents"], row[name]) for row in rows if row.get(name) is not None]
        style = "--" if name == "rewrite" else "-"
        axes.plot([p[0] for p in points], [p[1] for p in points], style, marker="o", label=name)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("documents in the index")
    axes.set_ylabel("seconds")
    axes.set_title("One write against the corpus size (rewrite: every document copied)", fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path, footer)
