"""The one bound on the weights a ranking adds to scores: a boost's weight, the prior's weight.

Scores and the weights added to them are summed in float32, whose largest value is about 3.4e38; a
weight of 1e39 (or two of 3e38) turned every score into ``inf``, which no JSON answer can carry. The
scores a weight is added to are cosines, [0, 1] fusions or BM25 scores, so no useful weight comes near
:data:`MAX_WEIGHT`, and any number of boosts of at most it stays far inside float32.
"""

from __future__ import annotations

import math

from dualsearch.errors import InvalidInputError

MAX_WEIGHT = 1e6


def check_weight(value: object, name: str, low: float = -MAX_WEIGHT, high: float = MAX_WEIGHT) -> float:
    """``value`` as a float if it is a finite number in [``low``, ``high``] (by default within
    :data:`MAX_WEIGHT` of 0), else :class:`InvalidInputError` naming ``name``.

    Example:
        >>> check_weight(0.08, "a boost's weight")
        0.08
        >>> check_weight(1e39, "the weight")
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: the weight must be a number between -1,000,000 and 1,000,000, got 1e+39
    """
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or not low <= number <= high:
        raise InvalidInputError(f"{name} must be a number between {low:,.15g} and {high:,.15g}, got {value!r:.40}")
    return float(number)
