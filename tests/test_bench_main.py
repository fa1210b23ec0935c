"""``python -m bench``: argument parsing and dispatch (nothing is measured)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

import bench.__main__ as entry

REPO = Path(__file__).resolve().parents[1]

# the run order of `python -m bench all --skip finetune,finetune_defaults,finetune_length,scale,ondisk`
WITHOUT_SLOW = [
    "import_time",
    "zero_shot",
    "engine",
    "ann_compare",
    "encoding",
    "reindex",
    "writes",
    "lexical_segments",
    "hybrid",
    "service_load",
    "service_writes",
    "sharding",
    "ray_serving",
    "backends",
    "one_shot",
    "stdlib_dev",
    "stdlib_search",
    "stdlib_ablations",
    "click_log",
    "ray_encoding",
]


def test_parse_skip_accepts_known_names_and_lists_the_valid_ones_otherwise():
    assert entry.parse_skip("finetune,scale") == ["finetune", "scale"]
    assert entry.parse_skip(" finetune , ") == ["finetune"]
    with pytest.raises(argparse.ArgumentTypeError, match="choose from import_time, zero_shot"):
        entry.parse_skip("finetune,nope")


def test_plan_keeps_the_run_order_without_the_skipped():
    assert entry.plan([]) == list(entry.BENCHMARKS)
    assert entry.plan(list(entry.SLOW)) == WITHOUT_SLOW


def test_command_parser_passes_the_rest_through():
    options = entry.command_parser().parse_args(["ann_compare", "--count", "1000", "--datasets", "synthetic"])
    assert options.command == "ann_compare" and options.args == ["--count", "1000", "--datasets", "synthetic"]
    options = entry.command_parser().parse_args(["all", "--skip", "finetune,scale"])
    assert entry.all_parser().parse_args(options.args).skip == ["finetune", "scale"]


def test_unknown_command_and_unknown_skip_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as raised:
        entry.main(["nope"])
    assert raised.value.code == 2 and "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        entry.main(["all", "--skip", "nope"])
    assert "unknown benchmark(s) nope" in capsys.readouterr().err


def test_benchmark_command_runs_the_module_in_a_fresh_interpreter():
    assert entry.benchmark_command("engine", ["--rebuild"]) == [sys.executable, "-m", "bench.engine", "--rebuild"]
    with pytest.raises(ValueError, match="choose from"):
        entry.benchmark_command("nope")


def test_all_dry_run_prints_the_commands_in_order(capsys):
    assert entry.main(["all", "--skip", ",".join(entry.SLOW), "--nice", "5", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "nice -n 5 python -m bench.import_time" and lines[-1] == "python -m bench report"
    assert not any("finetune" in line or "bench.scale" in line for line in lines)


def test_list_and_report(tmp_path, capsys):
    assert entry.main(["list"]) == 0
    assert "ann_compare" in capsys.readouterr().out
    (tmp_path / "engine.json").write_text(
        json.dumps(
            {"command": "python -m bench.engine", "date": "d", "machine": {}, "index": {}, "overlap_vs_exact": []}
        )
    )
    assert entry.main(["report", "--results", str(tmp_path), "--docs", str(tmp_path / "docs")]) == 0
    assert "python -m bench.engine" in (tmp_path / "docs" / "benchmarks.md").read_text()


def test_run_all_reports_failures_and_continues(monkeypatch, tmp_path, capsys):
    ran = []
    monkeypatch.setattr(
        entry, "run_benchmark", lambda name, args, nice=0: (ran.append(name), (1 if name == "engine" else 0, 0.5))[1]
    )
    monkeypatch.setattr("bench.report.write_report", lambda: tmp_path / "benchmarks.md")
    assert entry.main(["all", "--skip", ",".join(entry.SLOW)]) == 1
    assert ran == WITHOUT_SLOW
    assert "failed (1)" in capsys.readouterr().out
    ran.clear()
    assert entry.main(["all", "--stop-on-error"]) == 1 and ran == ["import_time", "zero_shot", "engine"]


def test_every_benchmark_script_is_reachable_as_python_dash_m_bench_name():
    """A script in bench/ is a benchmark (registered), or one of the shared modules (common, report*)."""
    shared = {"__init__", "__main__", "common"}
    scripts = {
        path.stem
        for path in (REPO / "bench").glob("*.py")
        if path.stem not in shared and not path.stem.startswith("report")
    }
    assert scripts == set(entry.BENCHMARKS) | set(entry.NEEDS_ARGUMENTS)


def test_no_benchmark_edits_the_import_path():
    offenders = [path.name for path in (REPO / "bench").glob("*.py") if "sys.path" in path.read_text(encoding="utf-8")]
    assert offenders == []


def test_benchmarks_read_no_private_field_of_the_engine():
    """Benchmarks use the engine as users do; what they need to look at is public (e.g. Searcher.store)."""
    import ast

    offenders = [
        f"{path.name}:{node.lineno} {ast.unparse(node)}"
        for path in (REPO / "bench").glob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]
    assert offenders == []
