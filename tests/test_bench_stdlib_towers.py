"""The runs bench/stdlib_towers.py trains: each tower choice at each budget, the both runs timed on their query run."""

from __future__ import annotations

from bench import stdlib_towers


def test_each_budget_trains_its_query_run_then_a_both_run_for_the_same_time(monkeypatch, tmp_path):
    trained, timed_on = [], []

    def finetune(name, data, work, extra, resume, options):
        trained.append((name, extra, options))
        return {"report": {"train_seconds": 100.0 if name == "query" else 200.0}}

    def equal_time_epochs(query_run, collection, work, name, resume):
        timed_on.append((query_run["report"]["train_seconds"], name))
        return "0.5" if query_run["report"]["train_seconds"] == 100.0 else "1.0"

    monkeypatch.setattr(stdlib_towers, "finetune", finetune)
    monkeypatch.setattr(stdlib_towers, "equal_time_epochs", equal_time_epochs)
    args = stdlib_towers.parse_args(["--work", str(tmp_path)])
    runs = stdlib_towers.train_runs(args, tmp_path / "data")
    assert list(runs) == ["query", "both", "query-long", "both-long"]
    assert trained == [
        ("query", [], ["--train", "query"]),
        ("both", ["--epochs", "0.5"], ["--train", "both"]),
        ("query-long", stdlib_towers.BUDGETS["long"], ["--train", "query"]),
        ("both-long", ["--epochs", "1.0"], ["--train", "both"]),
    ]
    assert timed_on == [(100.0, "both"), (200.0, "both")]  # one probe of the both run's step, shared


def test_a_both_run_without_its_query_run_trains_for_its_budgets_epochs(monkeypatch, tmp_path):
    trained = []
    monkeypatch.setattr(stdlib_towers, "finetune", lambda name, *rest: trained.append((name, rest[2])) or {})
    args = stdlib_towers.parse_args(["--work", str(tmp_path), "--runs", "both", "--budgets", "long"])
    stdlib_towers.train_runs(args, tmp_path)
    assert trained == [("both-long", stdlib_towers.BUDGETS["long"])]
