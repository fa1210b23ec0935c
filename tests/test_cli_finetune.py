"""``dualsearch finetune`` in-process: config from options, metrics printed, errors on one line."""

from __future__ import annotations

import json

import pytest

from dualsearch.cli import build_parser, main
from dualsearch.corpora.sources import TINY_CORPUS_DIR


def parse(*argv: str):
    return build_parser().parse_args(["finetune", "data", "--out", "m", *argv])


def test_options_override_a_config_file(tmp_path):
    from dualsearch.cli.finetune import config_from_args

    path = tmp_path / "train_config.json"
    path.write_text(json.dumps({"epochs": 3.0, "learning_rate": 5e-5, "dev_split": "dev"}))
    config = config_from_args(
        parse(
            "--config",
            str(path),
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
    assert (config.epochs, config.learning_rate, config.hard_negatives) == (2.0, 5e-5, 2)
    assert (config.negative_range_min, config.negative_range_max, config.negative_margin) == (3, 30, 0.05)
    assert config.tied and config.bf16 and not config.gradient_cache
    assert (config.dev_split, config.dev_fraction) == (None, 0.2)


def test_flags_turn_off_what_a_config_file_or_the_default_turned_on(tmp_path):
    from dualsearch.cli.finetune import config_from_args

    assert config_from_args(parse()).avoid_known_positives  # on by default
    assert not config_from_args(parse("--no-avoid-known-positives")).avoid_known_positives
    path = tmp_path / "train_config.json"
    path.write_text(json.dumps({"tied": True}))
    assert not config_from_args(parse("--config", str(path), "--no-tied")).tied


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
    assert "trained on 14 pairs" in printed and "dev (4 queries, 26 documents)" in printed
    assert "before" in printed and "after" in printed and "ndcg@10" in printed
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
