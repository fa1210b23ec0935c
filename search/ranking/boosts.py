"""Boosts: a fixed amount added to the score of every document whose metadata field has a given value,
the way Elasticsearch's function score or Vespa's rank expressions lift a kind of document whatever
the query.

An index (or one query) lists boosts as ``(field, value, weight)``
(:class:`~dualsearch.ranking.settings.SearchSettings` ``boosts``); on the command line
``--boost kind=function:0.08``. A document gains the weights of every boost it matches, after the
fusion and with the prior (:mod:`dualsearch.ranking.priors`), over the same candidates; a negative weight
lowers. Like a prior's weight, a boost's is on the scale of the mode's scores (a cosine for
``dense``, [0, 1] for the convex fusion, BM25 for ``lexical``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from dualsearch.errors import InvalidInputError

Boost = tuple[str, object, float]  # metadata field, value, weight


def parse_boost(text: str) -> Boost:
    """``FIELD=VALUE:WEIGHT`` as a boost; VALUE is read as a ``--filter`` value is (JSON numbers and
    booleans, else text).

    Example:
        >>> parse_boost("kind=function:0.08"), parse_boost("deprecated=true:-0.1")
        (('kind', 'function', 0.08), ('deprecated', True, -0.1))
        >>> parse_boost("kind:0.1")
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: a boost is FIELD=VALUE:WEIGHT (e.g. kind=function:0.08), got 'kind:0.1'
    """
    from dualsearch.ranking.filters import parse_filter_option

    condition, colon, weight = text.rpartition(":")
    field = condition.partition("=")[0]
    if not colon or "=" not in condition or not field.strip() or any(symbol in field for symbol in "<>{"):
        raise InvalidInputError(f"a boost is FIELD=VALUE:WEIGHT (e.g. kind=function:0.08), got {text!r}")
    try:
        number = float(weight)
    except ValueError:
        raise InvalidInputError(f"the boost {text!r} needs a number after the last ':', got {weight!r}") from None
    ((field, value),) = parse_filter_option(condition).items()  # FIELD=VALUE: one equality
    return check_boosts([(field, value, number)])[0]


def parse_boosts(items: Sequence) -> tuple[Boost, ...]:
    """Boosts given as ``FIELD=VALUE:WEIGHT`` texts (the CLI's ``--boost``) or ``(field, value, weight)``.

    Example:
        >>> parse_boosts(["kind=function:0.08", ["kind", "class", 0.05]])
        (('kind', 'function', 0.08), ('kind', 'class', 0.05))
    """
    return check_boosts([parse_boost(item) if isinstance(item, str) else item for item in items])


def check_boosts(boosts: Sequence) -> tuple[Boost, ...]:
    """Boosts as a tuple of ``(field, value, weight)`` tuples (a manifest stores them as lists), checked:
    the value is a string, number or boolean, the weight a finite number."""
    checked = []
    for boost in boosts:
        if not isinstance(boost, (list, tuple)) or len(boost) != 3:
            raise InvalidInputError(f"a boost is (field, value, weight), got {boost!r}")
        field, value, weight = boost
        if not isinstance(field, str) or not field:
            raise InvalidInputError(f"a boost's field must be a non-empty string, got {field!r}")
        if not isinstance(value, (str, int, float)) or value != value:
            raise InvalidInputError(f"a boost on {field!r} needs a string, number or boolean, got {value!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise InvalidInputError(f"a boost's weight must be a finite number, got {weight!r}")
        checked.append((field, value, float(weight)))
    return tuple(checked)


def boost_scores(boosts: Sequence[Boost], matching: Callable[[dict], np.ndarray], count: int) -> np.ndarray:
    """Every document's total boost: (count,) float32. ``matching(filter)`` gives the document rows a
    metadata filter lets through (:mod:`dualsearch.ranking.filters`: a boost matches as ``{field: value}`` does).

    Example:
        >>> kinds = ["function", "method", "class"]
        >>> def matching(spec):
        ...     (field, value), = spec.items()
        ...     return np.array([row for row, kind in enumerate(kinds) if kind == value])
        >>> boost_scores([("kind", "function", 0.5), ("kind", "class", -0.25)], matching, 3).tolist()
        [0.5, 0.0, -0.25]
    """
    total = np.zeros(count, np.float32)
    for field, value, weight in boosts:
        total[matching({field: value})] += weight
    return total
