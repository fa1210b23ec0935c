"""The default recipe's rules: each one fires on the data shape it was measured on, and options win."""

from __future__ import annotations

import pytest

from dualsearch.finetune.recipe import DataShape, recipe_config

SCIFACT_LIKE = DataShape(positives=(1,) * 700 + (2,) * 109, documents=5183, has_dev_split=False)  # 919 pairs
NFCORPUS_LIKE = DataShape(positives=(43,) * 2590, documents=3633, has_dev_split=True)


def recipe(shape, **options):
    return recipe_config(shape, options, native_bf16=False)


def config_for(shape, **options):
    return recipe(shape, **options)[0]


def test_few_pairs_with_one_positive_each_train_three_epochs_with_a_hard_negative_on_held_out_dev():
    config, reasons = recipe(SCIFACT_LIKE)
    assert (config.epochs, config.hard_negatives, config.max_positives_per_query) == (3, 1, None)
    assert (config.dev_split, config.dev_fraction, config.evaluation_steps) == (None, 0.15, None)
    assert config.dev_max_documents == 2000  # 5,183 documents: a sample at dev time
    assert config.learning_rate == 5e-5 and config.interpolate
    assert config.train_max_document_length is None  # a short run: documents at the base's length
    assert any(reason.startswith("epochs = 3: about 780 training pairs") for reason in reasons)
    assert any(reason.startswith("train_max_document_length = None: about 780") for reason in reasons)


def test_many_positives_per_query_are_capped_train_one_epoch_evaluated_four_times_without_mining():
    config, reasons = recipe(NFCORPUS_LIKE)
    assert (config.max_positives_per_query, config.epochs, config.hard_negatives) == (8, 1, 0)
    assert config.dev_split == "dev" and config.dev_fraction == 0.0 and config.dev_max_documents is None
    assert config.evaluation_steps == 162  # 2,590 queries x 8 = 20,720 pairs: 648 steps, evaluated 4 times
    assert any("judged documents a query" in reason for reason in reasons)
    assert config.train_max_document_length == 128  # a long run keeps the short documents


@pytest.mark.parametrize(
    ("pairs", "epochs", "length"), [(1_999, 3, None), (2_000, 2, 128), (7_999, 2, 128), (8_000, 1, 128)]
)
def test_epochs_and_training_length_follow_the_number_of_pairs(pairs, epochs, length):
    shape = DataShape(positives=(1,) * pairs, documents=10_000, has_dev_split=True)
    assert config_for(shape).epochs == epochs
    assert config_for(shape).train_max_document_length == length
    assert config_for(shape, train_max_document_length=64).train_max_document_length == 64  # an option wins


def test_too_few_queries_for_a_dev_set_train_without_one(caplog):
    config, _ = recipe(DataShape(positives=(1,) * 100, documents=500, has_dev_split=False))
    assert config.dev_split is None and config.dev_fraction == 0.0 and config.evaluation_steps is None
    assert "no dev set" in caplog.text
    assert config_for(DataShape(positives=(1,) * 140, documents=500, has_dev_split=False)).dev_fraction == 0.15


def test_options_override_the_rules_and_the_rules_follow_them():
    config, reasons = recipe(NFCORPUS_LIKE, epochs=2.0, hard_negatives=2, max_positives_per_query=2)
    assert (config.epochs, config.hard_negatives, config.max_positives_per_query) == (2.0, 2, 2)
    assert config.evaluation_steps is None  # more than one epoch: evaluated once an epoch
    assert not any(reason.startswith(("epochs", "hard_negatives")) for reason in reasons)
    assert config_for(SCIFACT_LIKE, dev_split="dev").dev_fraction == 0.0  # a dev choice of the user's stands


def test_bfloat16_only_where_the_cpu_has_it():
    assert recipe_config(SCIFACT_LIKE, native_bf16=True)[0].bf16
    assert not recipe_config(SCIFACT_LIKE, native_bf16=False)[0].bf16
    assert recipe_config(SCIFACT_LIKE, {"bf16": True}, native_bf16=False)[0].bf16


def test_a_click_log_takes_the_negatives_and_correction_its_benchmark_chose_and_options_win():
    from dualsearch.finetune.recipe import CLICK_LOG_LOGQ, CLICK_LOG_NEGATIVES

    click_log = DataShape(positives=(1,) * 3000, documents=3633, has_dev_split=True, click_log=True)
    config, reasons = recipe(click_log)
    assert (config.negatives, config.logq) == (CLICK_LOG_NEGATIVES, CLICK_LOG_LOGQ)
    assert any(reason.startswith(f"negatives = {CLICK_LOG_NEGATIVES!r}: ") for reason in reasons)
    assert (config_for(SCIFACT_LIKE).negatives, config_for(SCIFACT_LIKE).logq) == (None, False)  # judged pairs
    overridden = config_for(click_log, negatives="mixed", logq=not CLICK_LOG_LOGQ)
    assert (overridden.negatives, overridden.logq) == ("mixed", not CLICK_LOG_LOGQ)


def test_long_runs_are_anchored_to_the_base_and_short_ones_are_not():
    from dualsearch.finetune.recipe import ANCHOR_FROM_PAIRS, ANCHOR_WEIGHT

    config, reasons = recipe(NFCORPUS_LIKE)
    assert config.anchor_weight == ANCHOR_WEIGHT
    assert any(reason.startswith(f"anchor_weight = {ANCHOR_WEIGHT!r}: 20,720 pairs") for reason in reasons)
    assert config_for(SCIFACT_LIKE).anchor_weight == 0.0
    just_under = DataShape(positives=(1,) * (ANCHOR_FROM_PAIRS - 1), documents=10_000, has_dev_split=True)
    assert config_for(just_under).anchor_weight == 0.0
    assert config_for(NFCORPUS_LIKE, anchor_weight=0.0).anchor_weight == 0.0  # --anchor-weight 0 turns it off
