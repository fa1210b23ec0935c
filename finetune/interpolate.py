"""Weight-space interpolation of tuned towers with their starting checkpoint (WiSE-FT).

Wortsman et al. 2022 ("Robust fine-tuning of zero-shot models") average the weights of a fine-tuned
model with those it started from: ``theta = (1 - alpha) * theta_base + alpha * theta_tuned``. Because
both come from the same checkpoint they sit in one basin, so the average keeps most of the in-domain
gain and most of the base model's behaviour elsewhere. Here each tower is interpolated with its own
starting weights (the query tower with the base, the document tower with the base), and a tower that
was frozen is left exactly as it is, so its hash and the index vectors it encoded stay valid.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from dualsearch.errors import InvalidInputError

SHARED = "shared"  # the one tower of a tied model

State = dict[str, torch.Tensor]


def towers_of(model) -> dict[str, torch.nn.Module]:
    """Route -> tower module of a Router model, or ``{"shared": model}`` for one tower serving both sides."""
    from dualsearch.finetune.model import tower_modules

    towers = tower_modules(model)
    return dict(towers) if towers is not None else {SHARED: model}


def snapshot(model) -> dict[str, State]:
    """A detached copy of every tower's weights, per tower (what ``interpolate`` mixes)."""
    return {
        route: {name: tensor.detach().clone() for name, tensor in tower.state_dict().items()}
        for route, tower in towers_of(model).items()
    }


def interpolate(
    model,
    base: Mapping[str, State],
    tuned: Mapping[str, State],
    alpha: float | Mapping[str, float],
    frozen: frozenset[str] = frozenset(),
) -> None:
    """Load ``(1 - alpha) * base + alpha * tuned`` into each tower of ``model``, in place.

    ``alpha`` is one weight for every tower or a weight per route (every tower that is not frozen).
    Floating-point tensors are mixed; others (integer buffers such as position ids) are taken from
    ``tuned``. Towers named in ``frozen`` get ``tuned``'s weights unchanged (bit-equal): mixing equal
    tensors in floating point could still change their last bits.

    Example:
        >>> base, tuned = snapshot(model), ...  # doctest: +SKIP
        >>> interpolate(model, base, tuned, 0.5)  # doctest: +SKIP
        >>> interpolate(model, base, tuned, {"query": 1.0, "document": 0.75})  # doctest: +SKIP
    """
    towers = towers_of(model)
    if set(base) != set(towers) or set(tuned) != set(towers):
        raise InvalidInputError(f"snapshots hold towers {sorted(base)} and {sorted(tuned)}; the model {sorted(towers)}")
    weights = _per_route(alpha, set(towers) - frozen)
    for route, tower in towers.items():
        if route in frozen:
            tower.load_state_dict(tuned[route])
            continue
        tower.load_state_dict(
            {name: _mix(base[route][name], tensor, weights[route]) for name, tensor in tuned[route].items()}
        )


def _per_route(alpha: float | Mapping[str, float], routes: set[str]) -> dict[str, float]:
    weights = dict(alpha) if isinstance(alpha, Mapping) else dict.fromkeys(routes, alpha)
    if set(weights) != routes:
        raise InvalidInputError(f"alphas are given for towers {sorted(weights)}; the model trains {sorted(routes)}")
    for route, weight in weights.items():
        if not 0.0 <= weight <= 1.0:
            raise InvalidInputError(f"alpha must be in [0, 1], got {weight} for the {route} tower")
    return weights


def _mix(base: torch.Tensor, tuned: torch.Tensor, alpha: float) -> torch.Tensor:
    if not tuned.is_floating_point():
        return tuned
    if alpha == 1.0:
        return tuned  # exact: (1 - 1) * base + tuned may differ from tuned in the last bit
    if alpha == 0.0:
        return base
    return torch.lerp(base, tuned, alpha)  # base + alpha * (tuned - base)
