"""FinetuneConfig: validation in __post_init__, strict JSON loading, round trip."""

from __future__ import annotations

import json

import pytest

from dualsearch.errors import DualsearchError, InvalidInputError
from dualsearch.finetune.config import FinetuneConfig


def test_defaults_are_valid_and_round_trip_through_json(tmp_path):
    config = FinetuneConfig(epochs=2.5, hard_negatives=2, negative_margin=0.05, dev_fraction=0.1, tied=True)
    config.write_json(tmp_path / "train_config.json")
    assert FinetuneConfig.from_json(tmp_path / "train_config.json") == config


def test_unknown_json_key_is_refused_with_the_valid_keys(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epoch": 3}))
    with pytest.raises(
        InvalidInputError, match=r"fine-tuning config: unknown fields \['epoch'\]; valid fields: .*'epochs'"
    ):
        FinetuneConfig.from_json(path)


def test_bad_json_and_missing_file_are_clear(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match="invalid JSON"):
        FinetuneConfig.from_json(tmp_path / "bad.json")
    with pytest.raises(InvalidInputError, match="not found"):
        FinetuneConfig.from_json(tmp_path / "absent.json")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"epochs": 0}, "epochs must be a positive number"),
        ({"batch_size": 0}, "batch_size must be a whole number"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"dev_split": "dev", "dev_fraction": 0.2}, "not both"),
        ({"dev_split": "train"}, "dev queries must be held out"),
        ({"dev_fraction": 1.0}, "dev_fraction"),
        ({"hard_negatives": -1}, "hard_negatives"),
        ({"negative_miner": "bm42"}, r"negative_miner must be one of \['bm25', 'towers', 'both'\]"),
        ({"negative_range_min": 10, "negative_range_max": 10}, "negative_range_min < negative_range_max"),
        ({"negative_margin": 1.5}, "negative_margin"),
        ({"min_relevance": 0}, "min_relevance"),
        ({"tied": "yes"}, "tied must be true or false"),
        ({"base": " "}, "base"),
    ],
)
def test_invalid_settings_are_refused(changes, message):
    with pytest.raises(InvalidInputError, match=message) as raised:
        FinetuneConfig(**changes)
    assert isinstance(raised.value, DualsearchError) and isinstance(raised.value, ValueError)


def test_document_lengths_to_train_at_and_to_choose_from():
    from dualsearch.finetune.selection import document_lengths

    recipe = FinetuneConfig()
    assert document_lengths(recipe, 256, has_dev=True) == (128, [128, 256])  # the saved one chosen on dev
    assert document_lengths(recipe, 256, has_dev=False) == (128, [128])  # nothing to choose with
    assert document_lengths(FinetuneConfig(max_document_length=200), 256, True) == (128, [200])
    assert document_lengths(FinetuneConfig(train_max_document_length=None), 256, True) == (256, [256])
    # training the query tower alone keeps the document tower as it is, length included
    assert document_lengths(FinetuneConfig(train="query"), 256, True) == (256, [256])
