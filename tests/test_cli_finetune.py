"""``dualsearch finetune`` in-process: config from options, metrics printed, errors on one line."""

from __future__ import annotations

import json

import pytest

from dualsearch.cli import build_parser, main
from dualsearch.corpora.sources import TINY_CORPUS_DIR

pytestmark = pytest.mark.slow  # trains, exports or starts Ray: seconds a test (make test-fast skips it)


def parse(*argv: str):
    return build_parser().parse_args(["finetune", "data", "--out", "m", *argv])


def test_options_hold_only_what_the_command_line_gives():
    from dualsearch.cli.finetune import options_from_args

    options = options_from_args(
        parse(
            "--epochs",
            "2",
            "--hard-negatives",
            "2",
            "--negative-range",
            "3",
            "30",
            "--negative-margin",
            "0.05",
            "--tied",
            "--bf16",
            "--dev-fraction",
            "0.2",
        )
    )
    assert options == {
        "epochs": 2.0,
        "hard_negatives": 2,
        "negative_range_min": 3,
        "negative_range_max": 30,
        "negative_margin": 0.05,
        "tied": True,
        "bf16": True,
        "dev_fraction": 0.2,
        "dev_split": None,  # a --config's dev split gives way to the fraction asked for
    }
    assert options_from_args(parse()) == {}  # the recipe decides everything else


def test_flags_turn_off_what_a_config_file_or_the_recipe_turned_on():
    from dualsearch.cli.finetune import options_from_args

    assert options_from_args(parse("--no-avoid-known-positives")) == {"avoid_known_positives": False}
    assert options_from_args(parse("--no-interpolate", "--train", "query")) == {"interpolate": False, "train": "query"}
    assert options_from_args(parse("--similarity", "dot")) == {"similarity": "dot"}


def test_a_config_file_is_used_as_given_with_options_on_top(tmp_path, monkeypatch):
    from dualsearch.finetune import train

    seen = {}

    def fake_finetune(data, out, config, show_progress, overwrite, options):
        seen.update(config=config, options=options)
        raise SystemExit(0)

    monkeypatch.setattr(train, "finetune", fake_finetune)
    path = tmp_path / "train_config.json"
    path.write_text(json.dumps({"epochs": 3.0, "tied": True}))
    with pytest.raises(SystemExit):
        main(["finetune", "data", "--out", "m", "--config", str(path), "--no-tied"])
    assert seen["config"].epochs == 3.0 and seen["config"].tied and seen["options"] == {"tied": False}


def test_dev_split_and_dev_fraction_are_exclusive(capsys):
    with pytest.raises(SystemExit):
        parse("--dev-split", "dev", "--dev-fraction", "0.1")
    assert "not allowed with argument" in capsys.readouterr().err


def test_finetune_command_trains_and_prints_dev_metrics_before_and_after(tmp_path, capsys, tiny_plain_model_dir):
    out = tmp_path / "model"
    code = main(
        [
            "finetune",
            str(TINY_CORPUS_DIR),
            "--out",
            str(out),
            "--split",
            "test",
            "--base",
            str(tiny_plain_model_dir),
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--dev-fraction",
            "0.25",
            "--max-document-length",
            "64",
            "--learning-rate",
            "1e-3",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "trained both towers on 14 pairs" in printed and "dev (4 queries, 26 documents)" in printed
    assert "before" in printed and "after" in printed and "ndcg@10" in printed
    assert "kept alpha" in printed and "documents at 64 tokens" in printed
    assert "recipe: bf16 = " in printed  # the rules that set what the command line did not
    assert (out / "train_config.json").is_file()
    assert (
        main(["index", "tiny", "--out", str(tmp_path / "index"), "--model", str(out), "--index-factory", "Flat"]) == 0
    )


def test_bad_training_data_is_one_line_on_stderr(tmp_path, capsys):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"query": "tea?"}\n')
    assert main(["finetune", str(bad), "--out", str(tmp_path / "m")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("dualsearch: error: ") and "has no positive (field 'document')" in error
    assert error.count("\n") == 1


def test_bad_option_values_are_refused(tmp_path, capsys):
    assert main(["finetune", str(TINY_CORPUS_DIR), "--out", str(tmp_path / "m"), "--negative-miner", "bm42"]) == 1
    assert "negative_miner must be one of" in capsys.readouterr().err
