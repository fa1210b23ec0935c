"""The service section of docs/benchmarks.md, from results/service_load.json."""

from __future__ import annotations

from bench.report_tables import dig, markdown_table, not_run, provenance

LABELS = {
    "micro_batching": "micro-batching, all cores per pass (default)",
    "one_pass_per_request": "one pass per request, all cores per pass",
    "micro_batching_one_thread_per_pass": "micro-batching, one thread per pass",
    "one_pass_per_request_one_thread_per_pass": "one pass per request, one thread per pass",
}


def service_section(record: dict | None) -> list[str]:
    lines = ["## The HTTP service under load", ""]
    if record is None:
        return lines + [not_run("service_load", "python -m bench service_load"), ""]
    rows = []
    for label, by_clients in (record.get("runs") or {}).items():
        for clients, numbers in by_clients.items():
            latency = numbers.get("latency_ms") or {}
            rows.append(
                [
                    LABELS.get(label, label),
                    int(clients),
                    numbers.get("queries_per_second"),
                    latency.get("p50"),
                    latency.get("p95"),
                    latency.get("p99"),
                    numbers.get("errors"),
                    dig(numbers, "cpu", "server", "cores_busy"),
                    dig(numbers, "cpu", "server", "ms_per_request"),
                    dig(numbers, "cpu", "clients", "cores_busy"),
                ]
            )
    lines += [
        provenance(record, "service_load"),
        "",
        f"`dualsearch serve` on the SciFact index (shipped defaults), clients on the same machine, "
        f"{record.get('seconds_per_run')} s per run, `GET /search?q=...&k=10`:",
        "",
        markdown_table(
            [
                "encoding",
                "clients",
                "queries/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "errors",
                "server cores busy",
                "server CPU ms/request",
                "client cores busy",
            ],
            rows,
            [0, 0, 1, 1, 1, 1, 0, 2, 2, 2],
        ),
        "",
    ]
    ratios = record.get("throughput_16_over_1_clients") or {}
    if ratios:
        text = "; ".join(f"{LABELS.get(label, label)}: {ratio}x" for label, ratio in ratios.items())
        lines += [f"Throughput at 16 clients over 1 client: {text} (target >= 2x with micro-batching).", ""]
    ceilings = record.get("ratio_ceiling_cores_over_one_client_busy") or {}
    if ceilings:
        text = "; ".join(f"{LABELS.get(label, label)}: {ceiling}x" for label, ceiling in ceilings.items())
        lines += [
            "A lone client waits for each answer, so the cores it keeps busy (server and client) are one "
            "request's whole cost in sequence; unless requests get cheaper under load, 16 clients can at most "
            f"fill the machine's cores, which caps the ratio at cores / cores busy with one client: {text}.",
            "",
        ]
    swap = record.get("swap_during_16_clients")
    if swap:
        lines += [
            f"A re-index by another process during a 16-client run (`dualsearch add`, {swap.get('add_seconds')} s "
            f"with loading the towers): {swap.get('requests')} requests, {swap.get('errors')} failed; versions "
            f"served {', '.join(swap.get('versions') or [])}; the first answer from the new version came "
            f"{dig(swap, 'first_new_answer_after_switch_seconds')} s after the pointer switched, the last from the "
            f"old one {dig(swap, 'last_old_answer_after_switch_seconds')} s after.",
            "",
        ]
    return lines
