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

import reprlib
from collections.abc import Callable, Sequence

import numpy as np

from dualsearch.corpora.metadata import scalar_problem
from dualsearch.corpora.text import text_problem
from dualsearch.errors import InvalidInputError
from dualsearch.ranking.weights import check_weight

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
    the field is text, the value a string, number or boolean a metadata field can hold
    (:mod:`dualsearch.corpora.metadata`), the weight a number within :data:`~dualsearch.ranking.weights.MAX_WEIGHT`."""
    if not isinstance(boosts, (list, tuple)):
        raise InvalidInputError(f"boosts are a list of (field, value, weight), got {type(boosts).__name__}")
    checked = []
    for boost in boosts:
        if not isinstance(boost, (list, tuple)) or len(boost) != 3:
            raise InvalidInputError(f"a boost is (field, value, weight), got {reprlib.repr(boost)}")
        field, value, weight = boost
        if text_problem(field) is not None:
            raise InvalidInputError(f"a boost's field {reprlib.repr(field)} {text_problem(field)}")
        if isinstance(value, (list, tuple, dict)) or value is None:
            raise InvalidInputError(
                f"a boost on {field!r} needs a string, number or boolean, got {reprlib.repr(value)}"
            )
        problem = scalar_problem(value)
        if problem is not None or value != value:  # NaN equals nothing: it would match no document
            raise InvalidInputError(
                f"a boost on {field!r} needs a string, number or boolean: its value {problem or 'is NaN'}"
            )
        checked.append((field, value, check_weight(weight, "a boost's weight")))
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
