"""Metadata filters: which documents a search may return.

A filter maps metadata fields to conditions, all of which must hold:

- ``{"lang": "en"}``: equality (strings, numbers, booleans);
- ``{"kind": ["class", "function"]}``: membership in a list;
- ``{"year": {"gte": 2010, "lt": 2020}}``: a range with ``gt``, ``gte``, ``lt``, ``lte`` (numbers,
  or dates as ISO-8601 strings, which compare in date order).

The condition becomes SQL over the store's JSON metadata; the matching document rows then restrict
the FAISS search (an ``IDSelector``) and the BM25 scores, so a filtered search still finds ``k``
documents whenever ``k`` match.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Mapping
from typing import Any

from dualsearch.corpora.metadata import parse_json, scalar_problem
from dualsearch.corpora.text import text_problem
from dualsearch.errors import InvalidInputError
from dualsearch.index.store import json_path

_INTEGER = re.compile(r"-?\d+")

RANGE_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# SQLite refuses an expression tree deeper than 1,000 (each condition is one AND deeper) and more than
# 32,766 bound values: a filter stays well inside both, with a message instead of a failed query.
MAX_FILTER_CONDITIONS = 100  # equalities, memberships and range bounds, in all
MAX_FILTER_VALUES = 10_000  # values compared with, in all (each member of a list counts)
Filter = Mapping[str, Any]


def _scalar(field: str, value: Any) -> Any:
    """A value a condition compares with: what a metadata field can hold (:mod:`dualsearch.corpora.metadata`),
    as SQLite's ``json_extract`` gives it back."""
    if isinstance(value, (list, tuple, Mapping)) or value is None or value != value:  # NaN equals nothing
        raise InvalidInputError(f"filter on {field!r}: {reprlib.repr(value)} is not a string, number or boolean")
    problem = scalar_problem(value)
    if problem is not None:
        raise InvalidInputError(f"filter on {field!r}: the value {problem}")
    return int(value) if isinstance(value, bool) else value  # json_extract reads JSON true/false as 1/0


def _check_field(field: Any) -> str:
    """A field name: text a metadata key can be (SQLite cannot bind a lone surrogate)."""
    problem = text_problem(field)
    if problem is not None:
        raise InvalidInputError(f"a filter's field name {reprlib.repr(field)} {problem}")
    return field


def filter_condition(spec: Filter) -> tuple[str, list[Any]]:
    """SQL condition and parameters selecting the documents that satisfy ``spec``; a filter of more than
    :data:`MAX_FILTER_CONDITIONS` conditions or :data:`MAX_FILTER_VALUES` values is refused.

    Example:
        >>> condition, parameters = filter_condition({"year": {"gte": 2010}, "kind": ["a", "b"]})
        >>> condition
        'json_extract(metadata, ?) >= ? AND json_extract(metadata, ?) IN (?, ?)'
        >>> parameters
        ['$."year"', 2010, '$."kind"', 'a', 'b']
    """
    if not isinstance(spec, Mapping) or not spec:
        raise InvalidInputError(
            f"a filter is a non-empty mapping of metadata fields to conditions, got {reprlib.repr(spec)}"
        )
    _check_size(spec)
    clauses, parameters = [], []
    for field, condition in spec.items():
        path = json_path(_check_field(field))
        column = "json_extract(metadata, ?)"
        if isinstance(condition, Mapping):
            unknown = sorted(map(str, set(condition) - set(RANGE_OPERATORS)))
            if unknown or not condition:
                raise InvalidInputError(
                    f"filter on {field!r}: range operators are {', '.join(RANGE_OPERATORS)}, got {unknown}"
                )
            for operator, bound in condition.items():
                clauses.append(f"{column} {RANGE_OPERATORS[operator]} ?")
                parameters += [path, _scalar(field, bound)]
        elif isinstance(condition, (list, tuple)):
            if not condition:
                raise InvalidInputError(f"filter on {field!r}: an empty list matches nothing")
            clauses.append(f"{column} IN ({', '.join('?' * len(condition))})")
            parameters += [path, *(_scalar(field, value) for value in condition)]
        else:
            clauses.append(f"{column} = ?")
            parameters += [path, _scalar(field, condition)]
    return " AND ".join(clauses), parameters


def _check_size(spec: Filter) -> None:
    """Refuse a filter of more conditions or values than SQLite is asked to take, before checking any."""
    conditions = values = 0
    for condition in spec.values():
        if isinstance(condition, Mapping):
            conditions, values = conditions + len(condition), values + len(condition)
        elif isinstance(condition, (list, tuple)):
            conditions, values = conditions + 1, values + len(condition)
        else:
            conditions, values = conditions + 1, values + 1
    if conditions > MAX_FILTER_CONDITIONS:
        raise InvalidInputError(f"a filter of {conditions:,} conditions; at most {MAX_FILTER_CONDITIONS}")
    if values > MAX_FILTER_VALUES:
        raise InvalidInputError(f"a filter comparing with {values:,} values; at most {MAX_FILTER_VALUES:,}")


def parse_filter_option(text: str) -> dict[str, Any]:
    """One ``--filter`` option: ``FIELD=VALUE``, ``FIELD>=VALUE`` (also ``<=``, ``>``, ``<``), or a JSON
    object. Values are read as JSON when they parse (numbers, true/false), else as strings.

    Example:
        >>> parse_filter_option("year>=2010"), parse_filter_option("kind=function")
        ({'year': {'gte': 2010}}, {'kind': 'function'})
    """
    text = text.strip()
    if text.startswith("{"):
        try:
            return parse_json(text)
        except json.JSONDecodeError as error:
            raise InvalidInputError(f"--filter {text!r:.60} is not valid JSON: {error}") from None
    for symbol, operator in ((">=", "gte"), ("<=", "lte"), (">", "gt"), ("<", "lt"), ("=", None)):
        field, found, value = text.partition(symbol)
        if found and field.strip():
            value = _option_value(value.strip())
            return {field.strip(): value if operator is None else {operator: value}}
    raise InvalidInputError(f"--filter {text!r}: expected FIELD=VALUE, FIELD>=VALUE, FIELD<VALUE ... or a JSON object")


def _option_value(text: str) -> Any:
    try:
        value = parse_json(text)
    except json.JSONDecodeError:
        if _INTEGER.fullmatch(text):  # more digits than Python converts: a number all the same, not text
            raise InvalidInputError(f"the filter value {text[:20]}... holds an integer beyond 64 bits") from None
        return text
    return value if isinstance(value, (int, float, bool, list)) else text


def merge_filters(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several ``--filter`` options as one filter (ranges on one field merge; anything else repeated is an error)."""
    merged: dict[str, Any] = {}
    for part in parts:
        for field, condition in part.items():
            if field in merged and isinstance(merged[field], dict) and isinstance(condition, dict):
                merged[field] = {**merged[field], **condition}
            elif field in merged:
                raise InvalidInputError(f"two conditions on {field!r}; give one value, a list, or a range")
            else:
                merged[field] = condition
    return merged
