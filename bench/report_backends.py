"""The backends and one-shot sections of docs/benchmarks.md, from results/backends.json and one_shot.json."""

from __future__ import annotations

from bench.report_tables import dig, markdown_table, not_run, provenance

BACKEND_LABELS = {
    "torch": "PyTorch fp32",
    "onnx": "ONNX Runtime fp32",
    "onnx-int8": "ONNX Runtime int8",
    "openvino": "OpenVINO (bf16 where native)",
    "openvino-int8": "OpenVINO int8 (calibrated)",
}


def backends_section(record: dict | None) -> list[str]:
    lines = ["## Tower backends (PyTorch, ONNX fp32 and int8, OpenVINO fp32/bf16 and int8)", ""]
    if record is None:
        return lines + [not_run("backends", "python -m bench backends"), ""]
    recorded = record.get("backends") or {}
    backends = {name: recorded[name] for name in sorted(recorded, key=_order)}
    rows = [
        [
            BACKEND_LABELS.get(name, name),
            entry.get("best_documents_per_second"),
            entry.get("best_batch_size"),
            entry.get("documents_per_second_vs_torch"),
            dig(entry, "scifact_index", "seconds"),
            entry.get("load_seconds"),
            entry.get("weights_mib"),
            entry.get("export_seconds"),
        ]
        for name, entry in backends.items()
    ]
    lines += [
        provenance(record, "backends"),
        "",
        f"Document encoding of {record.get('throughput_documents')} SciFact documents at the best batch size, "
        "all cores; the SciFact index built with the engine's defaults (passages, IVF, BM25) by each backend:",
        "",
        markdown_table(
            ["backend", "documents/s", "batch", "vs PyTorch", "SciFact index s", "load s", "weights MiB", "export s"],
            rows,
            [0, 1, 0, 2, 1, 2, 1, 1],
        ),
        "",
    ]
    quality = record.get("ndcg10_exact_dense") or {}
    if quality:
        document_backends = list(next(iter(quality.values())))
        lines += [
            "nDCG@10 on SciFact test, exact dense search, queries (rows) against documents (columns) encoded by "
            "each backend:",
            "",
            markdown_table(
                ["queries \\ documents", *(BACKEND_LABELS.get(name, name) for name in document_backends)],
                [[BACKEND_LABELS.get(q, q), *(row.get(d) for d in document_backends)] for q, row in quality.items()],
                [0, *([4] * len(document_backends))],
            ),
            "",
        ]
    latency_rows = []
    for backend, by_threads in (record.get("query_latency") or {}).items():
        for threads, by_mode in by_threads.items():
            for mode, numbers in by_mode.items():
                row = [BACKEND_LABELS.get(backend, backend), threads.split("_")[0], mode]
                latency_rows.append(row + [numbers.get("p50_ms"), numbers.get("p95_ms")])
    if latency_rows:
        lines += [
            f"One query end to end (`Searcher.search`, k=10: tokenise, encode, search, fetch), "
            f"{record.get('queries_timed')} SciFact test queries one at a time (ms):",
            "",
            markdown_table(["query tower", "threads", "mode", "p50 ms", "p95 ms"], latency_rows, [0, 0, 0, 2, 2]),
            "",
        ]
    stdlib = record.get("stdlib_index_build") or {}
    if stdlib:
        text = ", ".join(f"{BACKEND_LABELS.get(name, name)} {entry.get('seconds')} s" for name, entry in stdlib.items())
        documents = next(iter(stdlib.values())).get("documents")
        lines += [f"The default index (`make run`: {documents} stdlib documents) built from scratch: {text}.", ""]
    return lines


def one_shot_section(record: dict | None) -> list[str]:
    lines = ["## A one-shot search from the shell", ""]
    if record is None:
        return lines + [not_run("one_shot", "python -m bench one_shot"), ""]
    processes = record.get("processes") or {}
    lines += [
        provenance(record, "one_shot"),
        "",
        f"Whole processes, {record.get('runs')} runs each, interleaved, on a SciFact index "
        f"(query {record.get('query')!r}), wall seconds:",
        "",
        markdown_table(
            ["command", "min s", "median s", "max s"],
            [[name, row.get("min_s"), row.get("median_s"), row.get("max_s")] for name, row in processes.items()],
            [0, 3, 3, 3],
        ),
        "",
    ]
    equality = record.get("equality") or {}
    if equality:
        lines += [
            "The light path (the index's ONNX query tower) against the PyTorch towers, every SciFact test query, "
            "`evaluate` with the index's defaults:",
            "",
            markdown_table(
                ["towers", "lowest query cosine", "nDCG@10 light", "nDCG@10 PyTorch", "difference"],
                [
                    [
                        row.get("model"),
                        row.get("lowest_query_cosine"),
                        row.get("ndcg10_light"),
                        row.get("ndcg10_torch"),
                        row.get("ndcg10_difference"),
                    ]
                    for row in equality.values()
                ],
                [0, 7, 4, 4, 5],
            ),
            "",
        ]
    return lines


def _order(backend: str) -> int:
    """PyTorch first, then ONNX fp32, then int8; an unknown backend last."""
    return list(BACKEND_LABELS).index(backend) if backend in BACKEND_LABELS else len(BACKEND_LABELS)
