"""The benchmark report's helpers and rendering, from tiny fake results (never real timings)."""

from __future__ import annotations

import json

import pytest

from bench.report import quality_rows, render, write_report
from bench.report_plots import plot_encoding, plot_ndcg, plot_recall_qps
from bench.report_tables import cell, dig, fastest_at, load_result, machine_text, markdown_table, not_run, provenance

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MACHINE = {"cpu": "Test CPU", "cores": 2, "memory_gib": 23.5}
HEAD = {"command": "python -m bench.fake --flag", "date": "2026-01-02 03:04:05 UTC", "machine": MACHINE}


def fake_results_before_hybrid() -> dict:
    """One small, structurally faithful record per results file (but hybrid's)."""
    runs = [
        {
            "effort": e,
            "overlap@10": o,
            "batch_queries_per_second": q,
            "single_queries_per_second": q / 2,
            "single_p50_ms": 1000 / q,
            "single_p95_ms": 2000 / q,
        }
        for e, o, q in ((1, 0.5, 9000.0), (8, 0.96, 3000.0), (32, 1.0, 900.0))
    ]
    flat = [
        {
            "effort": None,
            "overlap@10": 1.0,
            "batch_queries_per_second": 300.0,
            "single_queries_per_second": 120.0,
            "single_p50_ms": 8.0,
            "single_p95_ms": 9.0,
        }
    ]
    index_rows = [
        {
            "index": "Flat",
            "knob": None,
            "factory": "IDMap,Flat",
            "nlist": 0,
            "vectors": 1000,
            "build_seconds": 0.1,
            "index_bytes": 2**20,
            "engine_parameter_overhead_ms": 0.1,
            "runs": flat,
        },
        {
            "index": "IVF-Flat",
            "knob": "nprobe",
            "factory": "IVF32,Flat",
            "nlist": 32,
            "vectors": 1000,
            "build_seconds": 1.5,
            "index_bytes": 2**21,
            "engine_parameter_overhead_ms": 0.01,
            "runs": runs,
        },
    ]
    metrics = {"ndcg@10": 0.64, "recall@100": 0.92, "mrr@10": 0.6}
    return {
        "zero_shot": {
            **HEAD,
            "scifact": {
                "index": {"default_nprobe": 8},
                "exact": metrics,
                "ivf_default_nprobe": metrics,
                "published_ndcg@10": {"BM25 (BEIR paper)": 0.665},
            },
        },
        "finetune": {
            "command": "python bench/finetune.py",
            "date": "2026-01-02T00:00:00Z",
            "machine": {"processor": "x86_64", "cpu_count": 2, "load_average_at_start": [5.0, 4.0, 3.0]},
            "runs": [
                {
                    "collection": "scifact",
                    "system": "fine-tuned untied",
                    "test": {**metrics, "ndcg@10": 0.70},
                    "wall_seconds": 600,
                }
            ],
        },
        "engine": {
            **HEAD,
            "build": "reused an existing index",
            "index": {"factory": "IVF132,Flat", "nlist": 132, "default_nprobe": 8, "documents": 5183},
            "latency_default_nprobe": {
                "end_to_end_ms": {"p50": 9.0, "p95": 12.0},
                "faiss_ms": {"p50": 0.1, "p95": 0.2},
            },
            "latency_exact": {"end_to_end_ms": {"p50": 10.0, "p95": 13.0}},
            "overlap_vs_exact": [{"nprobe": 8, "overlap@10": 0.99, "batch_queries_per_second": 5000.0}],
        },
        "ann_compare": {
            **HEAD,
            "repeats": 3,
            "faiss_threads": {"build_and_batched": 2, "single_query": 1},
            "total_seconds": 120.0,
            "load_average": {"start": [1.0, 1.5, 2.0]},
            "datasets": [
                {
                    "name": "toy",
                    "vectors": 1000,
                    "dimension": 8,
                    "queries": 50,
                    "source": "made up",
                    "indexes": index_rows,
                }
            ],
        },
        "scale": {
            **HEAD,
            "vectors": 1000,
            "factory": "IVF32,Flat",
            "default_nprobe": 8,
            "build_seconds": 1.0,
            "generate_seconds": 0.5,
            "curve": [
                {"nprobe": 8, "overlap@10": 0.9, "p50_ms": 0.1, "p95_ms": 0.2, "queries_per_second_single": 9000.0}
            ],
        },
        "encoding": {
            **HEAD,
            "model": "default",
            "torch_threads": 2,
            "default_max_seq_length": 256,
            "total_seconds": 60.0,
            "token_lengths": {"documents": {"median": 250, "p95": 500}, "queries": {"median": 20, "p95": 30}},
            "throughput": [
                {"side": side, "max_seq_length": length, "batch_size": batch, "texts_per_second": 10.0 * batch / length}
                for side in ("documents", "queries")
                for length in (32, 256)
                for batch in (1, 8)
            ],
            "stages": {
                "queries": 5,
                "k": 10,
                "index": {"factory": "IVF132,Flat", "nprobe": 8},
                "slowest_stage": "encode",
                "ms": {
                    s: {"p50": v, "p95": 2 * v, "mean": v}
                    for s, v in (
                        ("tokenize", 0.2),
                        ("encode", 5.0),
                        ("faiss_search", 0.1),
                        ("fetch", 0.3),
                        ("end_to_end", 6.0),
                    )
                },
            },
        },
        "reindex_incremental": {
            **HEAD,
            "documents": 5183,
            "changed_documents": 52,
            "full_build_seconds": 100.0,
            "reindex_seconds": 5.0,
            "ratio": 0.05,
            "target_ratio": 0.1,
        },
        "reindex_memory": {
            **HEAD,
            "tower": "tiny",
            "runs": {
                "20000": {"peak_rss_mib": 500.0, "seconds": 10.0},
                "200000": {"peak_rss_mib": 600.0, "seconds": 80.0},
            },
            "ratio_200k_to_20k": 1.2,
            "target_ratio": 1.5,
        },
    }


def fake_hybrid() -> dict:
    cost = {
        "latency_ms": {"p50": 10.0, "p95": 12.0},
        "latency_p50_ratio": 1.0,
        "index_bytes_ratio": 1.0,
        "build_seconds_ratio": 1.0,
    }
    metrics = {"ndcg@10": 0.7, "recall@100": 0.9, "mrr@10": 0.65}
    return {
        "command": "python -m bench.hybrid",
        "date": "2026-11-22",
        "machine": {"cpu": "x", "cores": 2},
        "model": "default",
        "dev_splits": {"scifact": "train"},
        "dev": {"scifact": {"truncated": {"dense": {"ndcg@10": 0.61}, "hybrid-rrf": {"ndcg@10": 0.7}}}},
        "chosen": {"index": "truncated", "search": "hybrid-rrf", "settings": {"mode": "hybrid"}},
        "test": {"scifact": {"today: truncated, dense": metrics, "chosen default": {**metrics, "ndcg@10": 0.74}}},
        "costs": {"scifact": {"today: truncated, dense": cost, "chosen default": {**cost, "latency_p50_ratio": 1.3}}},
    }


def fake_service_load() -> dict:
    numbers = {
        "requests": 100,
        "errors": 0,
        "queries_per_second": 50.0,
        "latency_ms": {"p50": 20, "p95": 30, "p99": 40},
        "cpu": {
            "server": {"cores_busy": 0.8, "ms_per_request": 16.0},
            "clients": {"cores_busy": 0.2, "ms_per_request": 4},
        },
    }
    return {
        "command": "python -m bench.service_load",
        "date": "2026-11-22 10:00:00 UTC",
        "machine": {"cpu": "test", "cores": 2},
        "seconds_per_run": 20,
        "runs": {"micro_batching": {"1": numbers, "16": numbers}, "one_pass_per_request": {"1": numbers}},
        "throughput_16_over_1_clients": {"micro_batching": 2.5},
        "ratio_ceiling_cores_over_one_client_busy": {"micro_batching": 2.0},
        "swap_during_16_clients": {
            "requests": 900,
            "errors": 0,
            "add_seconds": 12.0,
            "versions": ["v000001", "v000002"],
            "first_new_answer_after_switch_seconds": 0.4,
            "last_old_answer_after_switch_seconds": 0.5,
        },
    }


def fake_backends() -> dict:
    def backend(rate: float) -> dict:
        return {
            "load_seconds": 0.5,
            "weights_mib": 100.0,
            "best_batch_size": 8,
            "best_documents_per_second": rate,
            "documents_per_second_vs_torch": rate / 20.0,
            "scifact_index": {"documents": 10, "seconds": 30.0, "reused": False},
        }

    latency = {"2_threads": {"dense": {"p50_ms": 3.0, "p95_ms": 5.0}}}
    return {
        **HEAD,
        "backends": {"onnx-int8": {**backend(40.0), "export_seconds": 9.0}, "torch": backend(20.0)},
        "ndcg10_exact_dense": {
            "torch": {"torch": 0.65, "onnx-int8": 0.66},
            "onnx-int8": {"torch": 0.64, "onnx-int8": 0.6},
        },
        "query_latency": {"onnx-int8": latency},
        "stdlib_index_build": {
            "torch": {"documents": 70, "seconds": 100.0},
            "onnx-int8": {"documents": 70, "seconds": 50.0},
        },
        "queries_timed": 200,
        "throughput_documents": 512,
    }


def fake_one_shot() -> dict:
    equality = {"model": "default", "lowest_query_cosine": 0.9999999, "ndcg10_light": 0.73, "ndcg10_torch": 0.73}
    return {
        **HEAD,
        "query": "vitamin d",
        "runs": 10,
        "processes": {"search (light)": {"min_s": 0.7, "median_s": 0.72, "max_s": 0.8}},
        "equality": {"default": {**equality, "ndcg10_difference": 0.0}},
    }


def fake_ray_encoding() -> dict:
    from bench.ray_encoding import model

    def run(rate, seconds):
        return {"documents_per_second": rate, "write_seconds": seconds, "start_seconds": 3.0, "documents": 2000}

    runs = {
        "local-1": run(12.0, 166.7),
        "local-2": run(24.0, 83.3),
        "ray-1": run(11.5, 173.9),
        "ray-2": run(22.0, 90.9),
        "driver": run(400.0, 5.0),
    }
    overhead = {"ray-1_vs_local-1": 0.042, "ray-2_vs_local-2": 0.083}
    return {
        **HEAD,
        "documents": 2000,
        "towers": "default",
        "runs": runs,
        "ray_overhead_at_equal_cores": overhead,
        "model": model(runs),
    }


def fake_ondisk() -> dict:
    def kind(peak, anonymous, p50, under_limit):
        memory = {"rss": peak, "anonymous": anonymous, "file": peak - anonymous, "peak": peak}
        search = {"nprobe": 512, "p50_ms": p50, "p95_ms": p50 * 1.2, "memory_after_queries_mib": memory}
        build = {
            "factory": "IVF4000,Flat",
            "build_seconds": 70.0,
            "build_peak_rss_mib": 4000,
            "build_peak_anonymous_mib": 1700,
        }
        return {"build": build, "search": search, "search_under_limit": under_limit}

    return {
        **HEAD,
        "vectors": 1_000_000,
        "dimension": 384,
        "queries": 200,
        "target_overlap": 0.95,
        "limit_mib": 400.0,
        "memory": kind(1600, 1550, 16.0, "killed: out of memory under the limit"),
        "disk": kind(1500, 60, 18.0, {"p50_ms": 30.0, "timed_queries": 10, "cgroup_peak_mib": 399.0}),
    }


def fake_stdlib_towers() -> dict:
    scores = {"mrr@10": 0.5, "success@5": 0.7}
    return {
        **HEAD,
        "command": "python -m bench stdlib_towers",
        "pairs": {
            "train": {
                "records": 10,
                "questions": 8,
                "mapped_questions": 5,
                "queries": 9,
                "pairs": 12,
                "distinct_documents": 4,
            }
        },  # fmt: skip
        "dev": {
            "base": dict.fromkeys(("conala_dev", "dev_questions", "dev_known_items"), scores),
            "query": dict.fromkeys(("conala_dev", "dev_questions", "dev_known_items"), {"mrr@10": 0.6}),
        },  # fmt: skip
        "dev_mean": {"base": 0.5, "query": 0.6},
        "chosen": "query",
        "runs": {"query": {"command": "dualsearch finetune X", "seconds": 90.0, "report": {"train_seconds": 60.0}}},
        "deltas": {
            "query": {
                "path": "search/towers/d.npz",
                "bytes": 2**20,
                "sha256": "ab" * 32,
                "largest_weight_difference": 1e-4,
            }
        },
        "wheel_bytes": 3 * 2**20,
        "test": {"base": {"judged": scores, "conala_test": scores}, "shipped": {"judged": {"mrr@10": 0.8}}},
        "examples": {
            "base": {"send an email": {"first_answer_rank": 12}},
            "shipped": {"send an email": {"first_answer_rank": 1, "top3": ["a", "b", "c"]}},
        },  # fmt: skip
    }


def fake_sharding() -> dict:
    row = {"same": 290, "ties": 10, "different": 0, "largest_score_difference": 2e-7, "one_p50_ms": 9.1,
           "sharded_p50_ms": 12.3, "one_p95_ms": 14.0, "sharded_p95_ms": 18.2}  # fmt: skip
    return {
        "command": "python -m bench sharding",
        "date": "2026-12-07 00:00:00 UTC",
        "machine": {"cpus": 2},
        "collection": "scifact",
        "queries": 300,
        "k": 10,
        "shards": [2590, 2593],
        "split_seconds": 4.2,
        "modes": {"dense": row, "hybrid": row},
    }


def fake_ray_serving() -> dict:
    return {
        "command": "python -m bench ray_serving",
        "date": "2026-12-07 00:00:00 UTC",
        "machine": {"cpus": 2},
        "collection": "scifact",
        "shards": 2,
        "single_process": {mode: {"requests": 300, "p50_ms": 20.5, "p95_ms": 31.0} for mode in ("hybrid", "dense")}
        | {"health": {"requests": 300, "p50_ms": 1.5, "p95_ms": 2.0}},
        "ray": {"hybrid": {"requests": 300, "p50_ms": 29.0, "p95_ms": 44.1},
                "dense": {"requests": 300, "p50_ms": 25.0, "p95_ms": 40.0},
                "health": {"requests": 300, "p50_ms": 4.5, "p95_ms": 6.0}},
        "health_overhead_p50_ms": 3.0,
        "serve_floor": {"nothing": {"requests": 300, "p50_ms": 4.0, "p95_ms": 5.0},
                        "round": {"requests": 300, "p50_ms": 9.0, "p95_ms": 11.0}, "round_p50_ms": 5.0,
                        "deployments": 2},
        "same_as_one_index": {"hybrid": {"queries": 300, "same_top_10": 300, "max_score_difference": 6e-08},
                              "dense": {"queries": 300, "same_top_10": 299, "max_score_difference": 0.002}},
        "fan_out_overhead_by_mode_p50_ms": {"hybrid": 8.5, "dense": 4.5},
        "fan_out_overhead_p50_ms": 8.5,
        "replica_killed": {"requests": 900, "errors": 0, "queries_per_second": 45.0,
                           "latency_ms": {"p50": 300.0, "p95": 500.0, "p99": 700.0}, "at_seconds": 6.7},
        "write": {"first": {"acknowledged_seconds": 0.1, "searchable_seconds": 9.5, "status": 202},
                  "second": {"acknowledged_seconds": 0.05, "searchable_seconds": 1.3, "status": 202}},
        "cost_model": {"shard_documents": 1000000, "per_shard_p50_ms": 25.2, "per_shard_p95_ms": 26.4, "nprobe": 768,
                       "overhead_ms": 8.5, "rows": [{"documents": 10000000, "shards": 10, "replicas": 2,
                       "processes": 20, "memory_gib": {"IVF-Flat": 1.44, "IVF-SQ8": 0.37, "IVF-PQ48": 0.05},
                       "expected_p50_ms": 34.9}]},
    }  # fmt: skip


def fake_results() -> dict:
    return {
        **fake_results_before_hybrid(),
        "ray_serving": fake_ray_serving(),
        "stdlib_towers": fake_stdlib_towers(),
        "sharding": fake_sharding(),
        "hybrid": fake_hybrid(),
        "service_load": fake_service_load(),
        "backends": fake_backends(),
        "one_shot": fake_one_shot(),
        "ray_encoding": fake_ray_encoding(),
        "ondisk": fake_ondisk(),
        "click_log": {
            **HEAD,
            "collection": "nfcorpus train",
            "parameters": {"seed": 12, "zipf_exponent": 1.1},
            "statistics": {"records": 20000, "click_share_of_top_1_percent_documents": 0.42},
        },
        "finetune_similarity": fake_similarity(),
        "click_training": fake_click_training(),
        "writes": {
            **HEAD,
            "towers": "FakeEncoder(dimension=384)",
            "repeats": 3,
            "sizes": {
                "10000": {
                    "documents": 10000,
                    "write_seconds_median": {"add one": 0.05, "replace one": 0.06, "delete one": 0.04, "add 100": 0.2},
                    "rewrite_seconds": 4.0,
                    "reindex_1_percent": {"seconds": 1.5, "bytes_written": 900, "share_of_build_bytes": 0.021},
                    "search": {
                        "segments": 10,
                        "hybrid_p50_ms_unmerged": 9.0,
                        "hybrid_p50_ms_after_optimize": 7.5,
                        "ratio": 1.2,
                    },
                    "optimize_against_fresh_build": {
                        mode: {"queries": 100, "same_top10": 100, "largest_score_difference": 0.0}
                        for mode in ("hybrid", "dense", "lexical")
                    },
                }
            },
        },
        "service_writes": {
            **HEAD,
            "documents": 10000,
            "load": {
                "seconds": 60,
                "writers": 4,
                "readers": 16,
                "writes": 4000,
                "reads": 20000,
                "failed_requests": 0,
                "write_ms": {"p50": 9.0, "p95": 20.0},
                "read_ms": {"p50": 30.0, "p95": 80.0},
                "acknowledged_adds_missing": 0,
                "acknowledged_deletes_still_there": 0,
            },
            "kills": [{"acknowledged": 100, "verified": True, "acknowledged_adds_missing": 0}] * 10,
            "real_towers": {
                "index": "SciFact",
                "writes": 10,
                "acknowledged_seconds_median": 0.02,
                "acknowledged_seconds_max": 0.03,
                "searchable_seconds_median": 0.4,
                "searchable_seconds_max": 0.6,
            },
        },
        "lexical_segments": {
            **HEAD,
            "split": "test",
            "segments": 8,
            "rewrite_fraction": 0.1,
            "collections": {
                "scifact": {
                    "engines": {
                        "bm25s": {
                            "ndcg@10": 0.68,
                            "recall@100": 0.91,
                            "largest_score_difference_from_bm25s": 0.0,
                            "latency_ms_p50": 0.5,
                            "latency_ms_p95": 0.6,
                        },
                    }
                }
            },
        },
    }


def fake_similarity() -> dict:
    def run(before, after, test):
        return {
            "wall_seconds": 600,
            "report": {"before": {"ndcg@10": before}, "after": {"ndcg@10": after}},
            "test": test,
        }

    return {
        **HEAD,
        "collection": "scifact",
        "test_precision": "float32",
        "chosen_on_dev": "dot",
        "runs": {
            "cosine": run(0.73, 0.81, {"ndcg@10": 0.74, "recall@100": 0.95}),
            "dot": run(0.70, 0.82, {"ndcg@10": 0.73, "recall@100": 0.94}),
        },
    }


def fake_click_training() -> dict:
    def run(after, test, cold):
        return {
            "wall_seconds": 1800,
            "report": {
                "before": {"ndcg@10": 0.30},
                "after": {"ndcg@10": after},
                "selection": {"alphas": {"query": 0.75, "document": 1.0}},
            },
            "test": {"ndcg@10": test, "cold_start": {"queries": 40, "ndcg@10": cold}},
        }

    return {
        **HEAD,
        "test_precision": "float32",
        "cold_start_test_queries": 40,
        "log_sha256": "0123456789abcdef0123",
        "chosen_on_dev": "mixed-logq",
        "runs_planned": ["sampled", "mixed-logq"],
        "zero_shot": {"ndcg@10": 0.31, "cold_start": {"queries": 40, "ndcg@10": 0.25}},
        "runs": {"sampled": run(0.32, 0.33, 0.26), "mixed-logq": run(0.33, 0.34, 0.27)},
    }


def test_the_scaling_sections_read_their_records_and_the_model_finds_where_the_driver_saturates():
    from bench.report_scaling import click_log_section, ondisk_section, ray_section

    record = fake_ray_encoding()
    assert record["model"]["workers_where_the_driver_saturates"] == round(400.0 / 11.5, 1)  # 1 / (5 s / 2000)
    by_machines = {row["machines"]: row for row in record["model"]["by_machines"]}
    assert not by_machines[4]["driver_bound"] and by_machines[64]["driver_bound"]  # 128 workers > 34.8
    assert by_machines[64]["documents_per_second"] == 400.0
    text = "\n".join(ray_section(record))
    assert "| Ray, 2 workers x 1 thread | 22.00 |" in text and "ray-2 against local-2 8.3%" in text
    disk = "\n".join(ondisk_section(fake_ondisk()))
    assert "| in memory | 70.0 | 4000 | 1700 | 16.00 |" in disk and "killed: out of memory" in disk
    assert "p50 30.0 ms over 10 queries, peak 399.0 MiB" in disk
    clicks = "\n".join(click_log_section(fake_results()["click_log"]))
    assert "zipf exponent 1.1" in clicks and "| records | 20,000 |" in clicks


def test_the_backends_and_one_shot_sections_read_their_records():
    from bench.report_backends import backends_section, one_shot_section

    text = "\n".join(backends_section(fake_backends()))
    assert text.index("| PyTorch fp32 | 20.0 |") < text.index("| ONNX Runtime int8 | 40.0 | 8 | 2.00 |")  # ordered
    assert (
        "| ONNX Runtime int8 | 0.6400 | 0.6000 |" in text and "| ONNX Runtime int8 | 2 | dense | 3.00 | 5.00 |" in text
    )
    assert "PyTorch fp32 100.0 s, ONNX Runtime int8 50.0 s" in text
    shot = "\n".join(one_shot_section(fake_one_shot()))
    assert "| search (light) | 0.700 | 0.720 | 0.800 |" in shot and "| default | 0.9999999 | 0.7300 |" in shot


def test_the_service_section_reads_its_record():
    from bench.report_service import service_section

    text = "\n".join(service_section(fake_service_load()))
    assert (
        "| micro-batching, all cores per pass (default) | 16 | 50.0 | 20 | 30 | 40 | 0 | 0.80 | 16.00 | 0.20 |" in text
    )
    assert "micro-batching, all cores per pass (default): 2.5x" in text
    assert "cores / cores busy with one client: micro-batching, all cores per pass (default): 2.0x" in text
    assert "900 requests, 0 failed" in text and "v000001, v000002" in text


def test_cell_formats_missing_floats_ints_and_pipes():
    assert cell(None) == "-" and cell(0.123456) == "0.1235" and cell(0.5, 1) == "0.5"
    assert cell(12345) == "12,345" and cell(42) == "42" and cell(True) == "yes"
    assert cell("a|b") == "a\\|b"


def test_markdown_table_layout_and_per_column_precision():
    table = markdown_table(["name", "x", "y"], [["a", 1.23456, 2.5], ["b", None, 3.0]], [0, 2, 1])
    assert table.splitlines() == ["| name | x | y |", "|---|---|---|", "| a | 1.23 | 2.5 |", "| b | - | 3.0 |"]


def test_markdown_table_refuses_ragged_rows_and_wrong_precisions():
    with pytest.raises(ValueError, match="cells"):
        markdown_table(["a", "b"], [[1]])
    with pytest.raises(ValueError, match="precisions"):
        markdown_table(["a", "b"], [[1, 2]], [1])


def test_load_result_missing_broken_and_good(tmp_path):
    assert load_result(tmp_path, "engine") is None
    (tmp_path / "engine.json").write_text("{not json")
    assert load_result(tmp_path, "engine") is None
    (tmp_path / "engine.json").write_text("[1, 2]")
    assert load_result(tmp_path, "engine") is None
    (tmp_path / "engine.json").write_text(json.dumps({"command": "x"}))
    assert load_result(tmp_path, "engine") == {"command": "x"}


def test_dig_survives_missing_keys_indexes_and_none():
    record = {"a": {"b": [{"c": 1}]}}
    assert dig(record, "a", "b", 0, "c") == 1
    assert dig(record, "a", "b", 5, "c", default="-") == "-"
    assert dig(None, "a") is None and dig(record, "a", "x", "y") is None


def test_machine_text_and_provenance_handle_both_machine_formats():
    assert machine_text(None) == "machine not recorded"
    assert machine_text({"processor": "x86_64", "cpu_count": 2}) == "x86_64, 2 cores"
    text = provenance(fake_results()["finetune"], "finetune")
    assert "`python bench/finetune.py`" in text and "load average 5, 4, 3" in text and "results/finetune.json" in text
    assert "Test CPU, 2 cores, 23.5 GiB" in provenance(HEAD, "engine")
    resumed = provenance({"commands": ["python bench/finetune.py ", "python bench/finetune.py --resume"]}, "finetune")
    assert resumed.startswith("*Measured by `python bench/finetune.py`, then `python bench/finetune.py --resume` on ?")
    assert "python -m bench engine" in not_run("engine")


def test_fastest_at_prefers_the_fastest_setting_reaching_the_target():
    runs = fake_results()["ann_compare"]["datasets"][0]["indexes"][1]["runs"]
    assert fastest_at(runs, 0.95)["effort"] == 8
    assert fastest_at(runs, 1.5)["effort"] == 32  # nothing reaches it: the most accurate
    with pytest.raises(ValueError):
        fastest_at([], 0.9)


def test_quality_rows_put_published_numbers_beside_ours_and_fall_back_without_zero_shot():
    results = fake_results()
    rows = quality_rows(results["zero_shot"], results["finetune"])
    systems = [row["system"] for row in rows]
    assert systems[0] == "BM25 (BEIR paper) [published]" and "zero-shot towers, IVF nprobe 8" in systems
    assert rows[-1]["system"] == "fine-tuned untied" and rows[-1]["ndcg@10"] == 0.70
    fallback = quality_rows(None, results["finetune"])
    assert any(row["published"] for row in fallback if row.get("published"))  # from bench.zero_shot's table


def test_reindex_section_reads_the_split_files(tmp_path):
    split = {
        "reindex_incremental": fake_results()["reindex_incremental"],
        "reindex_memory": {
            **HEAD,
            "tower": "tiny",
            "runs": {"20000": {"peak_during_indexing_mib": 600.0, "seconds": 19.0}},
            "ratio_200k_to_20k": 1.16,
            "target_ratio": 1.5,
        },
    }
    text = render(split, tmp_path)
    assert "`results/reindex_incremental.json`" in text and "| 5183 | 52 | 100.00 | 5.00 | 0.0500 | 0.10 |" in text
    assert (
        "| documents | peak_during_indexing_mib | seconds |" in text and "| reindex | 2.1 |" in text
    )  # 100 + 5 + 19 s
    half = render({"reindex_incremental": split["reindex_incremental"]}, tmp_path)
    assert half.count("_Not run yet: `python -m bench reindex`") == 1


def test_render_with_no_results_says_not_run_for_every_section(tmp_path):
    text = render({}, tmp_path)
    for name in ("zero_shot", "engine", "ann_compare", "scale", "encoding", "reindex_incremental", "reindex_memory"):
        assert f"`results/{name}.json`" in text
    assert text.count("_Not run yet") >= 6
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.slow
def test_write_report_from_fake_results_writes_tables_and_pngs(tmp_path):
    results_dir, docs = tmp_path / "results", tmp_path / "docs"
    results_dir.mkdir()
    for name, record in fake_results().items():
        (results_dir / f"{name}.json").write_text(json.dumps(record))
    path = write_report(results_dir, docs)
    text = path.read_text()
    assert "Not run yet" not in text
    assert "| scifact | BM25 (BEIR paper) [published] | published | 0.6650 |" in text
    assert "`python -m bench.fake --flag`" in text and "2026-01-02 03:04:05 UTC" in text
    assert "| IVF-Flat | IVF32,Flat | 1000 | 1.5 | 2.0 | nprobe=8 | 0.9600 | 3,000.0 | 10.0 |" in text  # 3000 / 300 q/s
    assert "never reached" not in text
    assert "Slowest stage: **encode**" in text and "| documents | 32 |" in text
    assert "| ann_compare | 2.0 | whole run |" in text and "| finetune | 10.0 |" in text
    assert "| 10,000 | 0.050 | 0.060 | 0.040 | 0.200 | 4.0 | 1.5 | 0.0210 |" in text
    assert "| 10,000 | 10 | 9.00 | 7.50 | 1.20 |" in text and "| dense | 100/100 | 0.0000000 |" in text
    assert "| scifact | bm25s | 0.6800 |" in text
    assert (
        "| 4000 | 20,000 | 0 | 9.0 | 20.0 | 30.0 | 80.0 | 0 | 0 |" in text
        and "1,000 acknowledged writes, **0 lost**" in text
    )
    for png in ("bench_ndcg.png", "bench_ann_toy.png", "bench_encoding.png", "bench_writes.png"):
        assert (docs / png).read_bytes()[:8] == PNG_MAGIC
        assert f"]({png})" in text


@pytest.mark.slow
def test_settings_that_never_reach_the_target_are_flagged(tmp_path):
    results = fake_results()
    for run in results["ann_compare"]["datasets"][0]["indexes"][1]["runs"]:
        run["overlap@10"] = min(run["overlap@10"], 0.5)
    text = render({"ann_compare": results["ann_compare"]}, tmp_path)
    assert "| nprobe=1 * |" in text and "never reached 0.95" in text  # all tie at 0.5: the fastest of them


@pytest.mark.slow
def test_plot_functions_write_pngs_from_tiny_inputs(tmp_path):
    bars = [
        {"collection": "scifact", "system": "BM25", "ndcg@10": 0.66, "published": True},
        {"collection": "scifact", "system": "ours", "ndcg@10": 0.64},
        {"collection": "nfcorpus", "system": "ours", "ndcg@10": 0.31},
    ]
    curves = [
        {"label": "IVF", "points": fake_results()["ann_compare"]["datasets"][0]["indexes"][1]["runs"]},
        {"label": "empty", "points": []},
    ]
    rows = fake_results()["encoding"]["throughput"]
    for path in (
        plot_ndcg(bars, tmp_path / "a.png", "footer"),
        plot_recall_qps(curves, tmp_path / "b" / "b.png", "toy"),
        plot_encoding(rows, tmp_path / "c.png"),
    ):
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5_000


def test_superseded_runs_stay_in_the_table_but_are_flagged_for_the_chart():
    results = fake_results()
    results["finetune"]["runs"].append(
        {
            "collection": "scifact",
            "system": "fine-tuned tied, earlier settings (superseded)",
            "superseded": True,
            "test": {"ndcg@10": 0.6},
        }
    )
    rows = [r for r in quality_rows(results["zero_shot"], results["finetune"]) if r["source"] == "finetune"]
    assert [(r["system"], r["superseded"]) for r in rows] == [
        ("fine-tuned untied", False),
        ("fine-tuned tied, earlier settings (superseded)", True),
    ]


def test_the_hybrid_section_shows_dev_choice_test_scores_and_cost_ratios(tmp_path):
    from bench.report_hybrid import hybrid_section

    record = fake_hybrid()
    text = "\n".join(hybrid_section({"hybrid": record, "hybrid-finetuned": None}, tmp_path))
    assert "| scifact | truncated | 0.6100 | 0.7000 |" in text and "| 0.7400 |" in text and "| 1.3000 |" in text
    assert "Chosen on dev: index `truncated`, search `hybrid-rrf`" in text and (tmp_path / "bench_hybrid.png").is_file()
    assert "Not run yet" in "\n".join(hybrid_section({"hybrid": None}, tmp_path))


def test_the_similarity_section_marks_the_dev_choice_and_shows_test():
    from bench.report_scaling import similarity_section

    text = "\n".join(similarity_section(fake_similarity()))
    assert "| cosine | 20.000 | 0.7300 | 0.8100 | 0.7400 | 0.9500 | 10.0 |" in text
    assert "| dot (chosen on dev) | 1.000 | 0.7000 | 0.8200 | 0.7300 | 0.9400 | 10.0 |" in text
    earlier = {"config": {"scale": None}, "report": {"after": {"ndcg@10": 0.72}}, "test": {"ndcg@10": 0.63}}
    replaced = "\n".join(similarity_section(fake_similarity() | {"replaced_runs": {"euclidean": [earlier]}}))
    assert (
        "Replaced by the run above: euclidean with loss scale 1 (the default then), dev nDCG@10 0.7200, test 0.6300"
        in replaced
    )
    assert "Not run yet" in "\n".join(similarity_section(None))


def test_the_click_training_section_shows_each_run_and_the_cold_start_queries():
    from bench.report_scaling import click_training_section

    text = "\n".join(click_training_section(fake_click_training()))
    assert "| zero-shot towers |  | - | - |  | 0.3100 | 0.2500 | - |" in text
    assert "| sampled (mined and in-batch) | no | 0.3000 | 0.3200 | 0.75/1.0 | 0.3300 | 0.2600 | 30.0 |" in text
    assert "| mixed (one of each) (chosen on dev) | yes | 0.3000 | 0.3300 | 0.75/1.0 | 0.3400 | 0.2700 | 30.0 |" in text
    assert "the 40 test queries" in text and "Unfinished" not in text
    assert "Every run used the log with SHA-256 `0123456789abcdef…`." in text
    resumed = fake_click_training()
    resumed["runs"] = dict(reversed(resumed["runs"].items()))  # a resumed benchmark redid sampled last
    again = "\n".join(click_training_section(resumed))
    assert again.index("| sampled (mined") < again.index("| mixed (one of each)")  # rows in the planned order
    unfinished = fake_click_training() | {"runs_planned": ["sampled", "sampled-logq", "mixed", "mixed-logq"]}
    assert "**Unfinished: 2 of 4 runs so far" in "\n".join(click_training_section(unfinished))


def test_the_ray_serving_section_shows_the_overhead_the_killed_replica_and_the_write():
    from bench.report_sharding import ray_serving_section

    text = "\n".join(ray_serving_section(fake_ray_serving()))
    assert "| hybrid | 20.5 / 31.0 | 29.0 / 44.1 | 8.5 | 300 / 300 | 6e-08 |" in text
    assert "| dense | 20.5 / 31.0 | 25.0 / 40.0 | 4.5 | 299 / 300 | 0.002 |" in text
    assert "**8.5 ms**" in text and "**0 failed** of 900" in text
    assert "4.5 ms at the p50 through `--ray` against 1.5 ms from one server: 3.0 ms" in text
    assert "answered 202 (logged by their shard) in 0.1 and 0.05 s, found by a search 9.5 s after" in text
    assert (
        "calls nothing takes 4.0 ms at the p50, and one with a round of trivial calls to 2 deployments 9.0 ms" in text
    )
    assert "| 10,000,000 | 10 | 2 | 20 | 1.44 | 0.37 | 0.05 | 34.9 |" in text
    assert "Not run yet" in "\n".join(ray_serving_section(None))


def test_the_sharding_section_shows_each_mode_agreement_and_times():
    from bench.report_sharding import sharding_section

    text = "\n".join(sharding_section(fake_sharding()))
    assert "| hybrid | 290 | 10 | 0 | 2.0e-07 | 9.1 / 12.3 | 14.0 / 18.2 |" in text
    assert "2 shards of 2,590, 2,593 documents" in text
    assert "Not run yet" in "\n".join(sharding_section(None))


def test_the_stdlib_towers_section_counts_the_pairs_from_the_documentation_when_there_are_some():
    from bench.report_stdlib import stdlib_towers_section

    record = fake_stdlib_towers()
    record["pairs"] |= {"faq": {"questions": 63}, "anchors": {"documents": 2000}}
    text = "\n".join(stdlib_towers_section(record))
    assert "63 questions of the Python FAQ" in text and "2000 anchors" in text and "library reference" not in text
    record["pairs"]["reference"] = {"documents": 1999}
    assert "and 1999 descriptions from the library reference" in "\n".join(stdlib_towers_section(record))
    assert "Python FAQ" not in "\n".join(stdlib_towers_section(fake_stdlib_towers()))


def test_the_stdlib_towers_section_shows_the_pairs_the_dev_choice_the_test_scores_and_the_examples():
    from bench.report_stdlib import stdlib_towers_section

    record = fake_stdlib_towers()
    text = "\n".join(stdlib_towers_section(record))
    assert "| train | 10 | 8 | 5 | 9 | 12 | 4 |" in text
    assert "| query (shipped) | 0.6000 | 0.6000 | 0.6000 | 0.6000 | 1.0 |" in text
    assert "| shipped | 0.8000 |" in text and "| send an email | 12 | 1 | a, b, c |" in text
    assert "1.0 MiB" in text and "3.0 MiB" in text and "ab" * 32 in text
    assert "Not run yet" in "\n".join(stdlib_towers_section(None))


def test_the_default_index_as_it_ships_shows_the_judged_set_and_the_examples_when_measured():
    from bench.report_stdlib import default_index_now_lines

    search = {
        **HEAD,
        "command": "python -m bench.stdlib_search",
        "mode": "hybrid",
        "metrics": {"mrr@10": 0.8123, "success@5": 0.9},
        "examples": {"send an email": {"first_answer_rank": 2, "top3": ["a", "b", "c"]}},
    }
    text = "\n".join(default_index_now_lines(search))
    assert "MRR@10 0.8123, success@5 0.9" in text and "| send an email | 2 | a, b, c |" in text
    del search["examples"]
    assert "send an email" not in "\n".join(default_index_now_lines(search))
    assert default_index_now_lines(None) == []
