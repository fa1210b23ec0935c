"""WiSE-FT weight interpolation: per tower, exact at the ends, and a frozen tower left bit-equal."""

from __future__ import annotations

import pytest
import torch

from dualsearch.errors import InvalidInputError
from dualsearch.finetune.interpolate import SHARED, interpolate, snapshot, towers_of


@pytest.fixture
def router(tiny_plain_model_dir):
    from dualsearch.finetune.model import build_training_model

    return build_training_model(str(tiny_plain_model_dir))


def shifted(states, amounts):
    """Each tower's floating-point weights plus its own constant, so towers and snapshots all differ."""
    return {
        route: {name: t + amounts[route] if t.is_floating_point() else t.clone() for name, t in state.items()}
        for route, state in states.items()
    }


def floats(tower):
    return {name: tensor for name, tensor in tower.state_dict().items() if tensor.is_floating_point()}


def test_each_tower_is_mixed_with_its_own_base_and_the_ends_are_exact(router):
    base = shifted(snapshot(router), {"query": 1.0, "document": -1.0})  # the towers start apart
    tuned = shifted(snapshot(router), {"query": 3.0, "document": 5.0})
    for alpha, expected in ((0.0, base), (1.0, tuned)):
        interpolate(router, base, tuned, alpha)
        for route, tower in towers_of(router).items():
            assert all(torch.equal(tensor, expected[route][name]) for name, tensor in floats(tower).items())
    interpolate(router, base, tuned, 0.25)
    for route, tower in towers_of(router).items():
        for name, tensor in floats(tower).items():
            torch.testing.assert_close(tensor, 0.75 * base[route][name] + 0.25 * tuned[route][name])


def test_a_frozen_tower_keeps_its_weights_bit_equal(router):
    tuned = snapshot(router)
    base = shifted(tuned, {"query": 0.5, "document": 0.0})  # the document tower was not trained
    interpolate(router, base, tuned, 0.3, frozen=frozenset({"document"}))
    document = towers_of(router)["document"]
    assert all(torch.equal(tensor, tuned["document"][name]) for name, tensor in document.state_dict().items())
    query = floats(towers_of(router)["query"])
    assert not all(torch.equal(tensor, tuned["query"][name]) for name, tensor in query.items())


def test_a_tied_model_is_one_tower(tiny_plain_model_dir):
    from dualsearch.finetune.model import build_training_model

    model = build_training_model(str(tiny_plain_model_dir), tied=True)
    assert list(towers_of(model)) == [SHARED]
    base = snapshot(model)
    tuned = shifted(base, {SHARED: 2.0})
    interpolate(model, base, tuned, 0.5)
    for name, tensor in floats(model).items():
        torch.testing.assert_close(tensor, base[SHARED][name] + 1.0)


def test_bad_alpha_and_mismatched_snapshots_are_refused(router, tiny_plain_model_dir):
    state = snapshot(router)
    with pytest.raises(InvalidInputError, match="alpha must be in"):
        interpolate(router, state, state, 1.5)
    with pytest.raises(InvalidInputError, match="snapshots hold towers"):
        interpolate(router, {"query": state["query"]}, state, 0.5)
    with pytest.raises(InvalidInputError, match="alphas are given for towers"):
        interpolate(router, state, state, {"query": 0.5})  # the document tower is trained too


def test_each_tower_takes_its_own_alpha(router):
    base = shifted(snapshot(router), {"query": 1.0, "document": -1.0})
    tuned = shifted(snapshot(router), {"query": 3.0, "document": 5.0})
    interpolate(router, base, tuned, {"query": 1.0, "document": 0.5})
    towers = towers_of(router)
    assert all(torch.equal(tensor, tuned["query"][name]) for name, tensor in floats(towers["query"]).items())
    for name, tensor in floats(towers["document"]).items():
        torch.testing.assert_close(tensor, 0.5 * base["document"][name] + 0.5 * tuned["document"][name])
