"""The stdlib towers section of docs/benchmarks.md (results/stdlib_towers.json): CoNaLa's questions
mapped to the default corpus, the training runs compared on dev, and the shipped towers scored
once against the default one."""

from __future__ import annotations

from bench.report_tables import dig, markdown_table, not_run, provenance

DEV_SETS = ("conala_dev", "dev_questions", "dev_known_items")


def stdlib_towers_section(record: dict | None) -> list[str]:
    lines = ["## The default index's towers, tuned on Python questions", ""]
    if record is None:
        return lines + [not_run("stdlib_towers", "python -m bench stdlib_towers"), ""]
    lines += [provenance(record, "stdlib_towers"), ""]
    pairs = record.get("pairs", {})
    lines += [
        "CoNaLa's questions whose snippets use documents of the default corpus "
        "(`dualsearch.corpora.stdlib_questions`):",
        "",
        markdown_table(
            ["split", "records", "questions", "questions that map", "queries", "pairs", "distinct documents"],
            [
                [
                    split,
                    dig(pairs, split, "records"),
                    dig(pairs, split, "questions"),
                    dig(pairs, split, "mapped_questions"),
                    dig(pairs, split, "queries"),
                    dig(pairs, split, "pairs"),
                    dig(pairs, split, "distinct_documents"),
                ]
                for split in ("train", "dev", "test")
            ],
        ),
        "",
        *_documentation_pairs(pairs),
        "Dev (MRR@10 through the default index's own search; the run with the best mean ships, since 0.7.0; "
        "before it, the query tower alone shipped whatever dev preferred):",
        "",
    ]
    dev, means, runs = record.get("dev", {}), record.get("dev_mean", {}), record.get("runs", {})
    rows = []
    for name, scores in dev.items():
        label = name + (" (shipped)" if name == record.get("chosen") else "")
        label += " (dev's best)" if name == record.get("dev_prefers") and name != record.get("chosen") else ""
        train_seconds = dig(runs, name, "report", "train_seconds")
        rows.append([label, *(dig(scores, s, "mrr@10") for s in DEV_SETS), means.get(name), _minutes(train_seconds)])
    lines += [
        markdown_table(
            ["run", "CoNaLa dev", "dev questions", "dev known items", "mean", "training (min)"],
            rows,
            [0, 4, 4, 4, 4, 1],
        ),
        "",
    ]
    for name, run in runs.items():
        lines.append(f"- `{name}`: `{run.get('command')}`, {run.get('seconds')} s in all")
    deltas = record.get("deltas", {})
    shipped = "; ".join(
        f"`{delta.get('path')}`, {delta.get('bytes', 0) / 2**20:.1f} MiB, sha256 `{delta.get('sha256')}`, largest "
        f"weight difference from the trained tower {delta.get('largest_weight_difference')}"
        for delta in deltas.values()
    )
    lines += [
        "",
        f"Shipped: {shipped}; the wheel with {'them' if len(deltas) > 1 else 'it'} "
        f"{record.get('wheel_bytes', 0) / 2**20:.1f} MiB.",
        "",
        "Scored once (test), the default towers against the shipped ones, each on its own index of the corpus "
        "and with the ranking settings the default index had when the run was made:",
        "",
    ]
    test = record.get("test", {})
    lines += [
        markdown_table(
            ["towers", "judged set MRR@10", "judged set success@5", "CoNaLa test MRR@10", "CoNaLa test success@5"],
            [
                [
                    name,
                    dig(test, name, "judged", "mrr@10"),
                    dig(test, name, "judged", "success@5"),
                    dig(test, name, "conala_test", "mrr@10"),
                    dig(test, name, "conala_test", "success@5"),
                ]
                for name in ("base", "shipped")
            ],
        ),
        "",
        "Issue #39's six example questions (rank of the first right answer in the top 50; never tuned on):",
        "",
    ]
    examples = record.get("examples", {})
    lines += [
        markdown_table(
            ["question", "default towers", "shipped towers", "shipped top 3"],
            [
                [
                    question,
                    dig(examples, "base", question, "first_answer_rank"),
                    row.get("first_answer_rank"),
                    ", ".join(row.get("top3", [])),
                ]
                for question, row in examples.get("shipped", {}).items()
            ],
        ),
        "",
    ]
    return lines


def default_index_now_lines(search: dict | None) -> list[str]:
    """The judged set and the six examples as the default index answers them today: its shipped towers
    with the ranking settings dev chose for them (results/stdlib_search.json), which the table above,
    made with the settings the default index had when the towers were trained, may not show yet."""
    if search is None:
        return []
    lines = [
        "### The default index as it ships",
        "",
        provenance(search, "stdlib_search"),
        "",
        f"The judged set with the shipped towers and the ranking settings dev chose for them "
        f"({search.get('mode')} search): MRR@10 {dig(search, 'metrics', 'mrr@10')}, success@5 "
        f"{dig(search, 'metrics', 'success@5')}.",
        "",
    ]
    examples = search.get("examples")
    if examples:
        lines += [
            "Issue #39's six example questions, as it answers them (never tuned on):",
            "",
            markdown_table(
                ["question", "first right answer (rank in the top 50)", "top 3"],
                [[q, row.get("first_answer_rank"), ", ".join(row.get("top3", []))] for q, row in examples.items()],
            ),
            "",
        ]
    return lines


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def _documentation_pairs(pairs: dict) -> list[str]:
    """The train split's pairs from the Python documentation, when the run had them."""
    faq, anchors = dig(pairs, "faq", "questions"), dig(pairs, "anchors", "documents")
    references = dig(pairs, "reference", "documents")
    if faq is None and anchors is None:
        return []
    sources = (
        f"{faq or 0} questions of the Python FAQ (`dualsearch.corpora.stdlib_faq`), {anchors or 0} anchors, a "
        "docstring's summary sentence → its document (`bench/stdlib_pairs.py`)"
    )
    if references is not None:
        sources += (
            f", and {references} descriptions from the library reference → the document they describe "
            "(`dualsearch.corpora.stdlib_reference`)"
        )
    return [f"The train row includes {sources}.", ""]
