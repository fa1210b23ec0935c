"""A tower shipped as a low-rank change to its base: written by dualsearch.finetune.tower_delta, read by
dualsearch.towers.tower_delta."""

import numpy as np
import pytest
import torch

from dualsearch.errors import ModelError
from dualsearch.finetune.tower_delta import low_rank_delta, save_delta
from dualsearch.towers.tower_delta import apply_delta, delta_sha256, read_delta


def _tower(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(24, 32), torch.nn.LayerNorm(32), torch.nn.Linear(32, 8))


def _low_rank_tuned(base: torch.nn.Module, rank: int) -> torch.nn.Module:
    """``base`` changed as LoRA changes it: each matrix by a rank-``rank`` product, one vector left alone,
    one changed whole."""
    tuned = _tower(0)
    tuned.load_state_dict(base.state_dict())
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in (tuned[0], tuned[2]):
            out_features, in_features = layer.weight.shape
            layer.weight += (
                torch.randn(out_features, rank, generator=generator)
                @ torch.randn(rank, in_features, generator=generator)
                * 0.01
            )
        tuned[1].weight += 0.05
    return tuned


def test_a_low_rank_change_round_trips_through_the_file(tmp_path):
    base, rank = _tower(0), 4
    tuned = _low_rank_tuned(base, rank)
    arrays, worst = low_rank_delta(tuned, base, rank, "base-sha")
    assert worst < 1e-3  # float16 factors
    assert {"0.weight|up", "0.weight|down", "2.weight|up", "1.weight|full"} <= set(arrays)
    assert "0.bias|full" not in arrays  # unchanged parameters are left out
    path = save_delta(arrays, tmp_path / "delta.npz")
    rebuilt = _tower(0)
    changed = apply_delta(rebuilt, read_delta(path, delta_sha256(path)), "base-sha")
    assert changed == 3
    inputs = torch.randn(5, 24)
    assert torch.allclose(rebuilt(inputs), tuned(inputs), atol=1e-3)
    assert not torch.allclose(base(inputs), tuned(inputs), atol=1e-3)  # the change is not negligible


def test_a_change_that_is_not_low_rank_shows_as_a_large_error():
    base = _tower(0)
    tuned = _tower(5)  # unrelated weights: a full-rank change
    _, worst = low_rank_delta(tuned, base, 2, "base-sha")
    assert worst > 0.05


def test_saving_the_same_change_twice_writes_the_same_bytes(tmp_path):
    base = _tower(0)
    arrays, _ = low_rank_delta(_low_rank_tuned(base, 3), base, 3, "base-sha")
    assert delta_sha256(save_delta(arrays, tmp_path / "a.npz")) == delta_sha256(save_delta(arrays, tmp_path / "b.npz"))


def test_a_delta_is_refused_for_other_base_weights_a_damaged_file_or_another_shape(tmp_path):
    base = _tower(0)
    arrays, _ = low_rank_delta(_low_rank_tuned(base, 2), base, 2, "base-sha")
    path = save_delta(arrays, tmp_path / "delta.npz")
    with pytest.raises(ModelError, match="applies to base weights"):
        apply_delta(_tower(0), read_delta(path), "other-sha")
    with pytest.raises(ModelError, match="sha256"):
        read_delta(path, "0" * 64)
    with pytest.raises(ModelError, match="missing"):
        read_delta(tmp_path / "absent.npz")
    wrong = dict(arrays)
    wrong["1.weight|full"] = np.zeros(3, dtype=np.float16)
    with pytest.raises(ModelError, match="shape"):
        apply_delta(_tower(0), wrong, "base-sha")
    stranger = {**arrays, "9.weight|full": np.zeros(3, dtype=np.float16)}
    with pytest.raises(ModelError, match="does not have"):
        apply_delta(_tower(0), stranger, "base-sha")


def test_the_stdlib_towers_are_the_default_ones_with_the_shipped_changes_and_their_card_names_their_hashes():
    from pathlib import Path

    from dualsearch.towers.weights import (
        DOCUMENT_ROUTE,
        QUERY_ROUTE,
        STDLIB_DOCUMENT_DELTA,
        STDLIB_DOCUMENT_DELTA_SHA256,
        STDLIB_QUERY_DELTA,
        STDLIB_QUERY_DELTA_SHA256,
        load_towers,
        route_transformer,
    )

    assert delta_sha256(STDLIB_QUERY_DELTA) == STDLIB_QUERY_DELTA_SHA256
    card = (Path(__file__).resolve().parents[1] / "docs" / "stdlib-towers.md").read_text(encoding="utf-8")
    assert f"| query delta sha256 | `{STDLIB_QUERY_DELTA_SHA256}`" in card
    default, stdlib = load_towers("default"), load_towers("stdlib")
    for route, shipped in ((QUERY_ROUTE, STDLIB_QUERY_DELTA_SHA256), (DOCUMENT_ROUTE, STDLIB_DOCUMENT_DELTA_SHA256)):
        before, after = (route_transformer(m, route).state_dict() for m in (default, stdlib))
        changed = [name for name in before if not torch.equal(before[name], after[name])]
        if shipped is None:  # that tower ships unchanged
            assert changed == [] and not STDLIB_DOCUMENT_DELTA.exists()
            assert "| document delta sha256 | `none" in card
            continue
        assert len(changed) >= 36  # every linear layer of the six transformer layers: q, k, v, o, up, down
        assert all(name.endswith("weight") for name in changed)  # LoRA changes matrices, not biases or norms
    if STDLIB_DOCUMENT_DELTA_SHA256 is not None:
        assert delta_sha256(STDLIB_DOCUMENT_DELTA) == STDLIB_DOCUMENT_DELTA_SHA256
        assert f"| document delta sha256 | `{STDLIB_DOCUMENT_DELTA_SHA256}`" in card
