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
from collections.abc import Mapping
from typing import Any

from dualsearch.errors import InvalidInputError
from dualsearch.index.store import json_path

RANGE_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
Filter = Mapping[str, Any]


def _scalar(field: str, value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)  # SQLite's json_extract reads JSON true/false as 1/0
    if isinstance(value, (str, int, float)) and value == value:  # NaN equals nothing
        return value
    raise InvalidInputError(f"filter on {field!r}: {value!r} is not a string, number or boolean")


def filter_condition(spec: Filter) -> tuple[str, list[Any]]:
    """SQL condition and parameters selecting the documents that satisfy ``spec``.

    Example:
        >>> condition, parameters = filter_condition({"year": {"gte": 2010}, "kind": ["a", "b"]})
        >>> condition
        'json_extract(metadata, ?) >= ? AND json_extract(metadata, ?) IN (?, ?)'
        >>> parameters
        ['$."year"', 2010, '$."kind"', 'a', 'b']
    """
    if not isinstance(spec, Mapping) or not spec:
        raise InvalidInputError(f"a filter is a non-empty mapping of metadata fields to conditions, got {spec!r}")
    clauses, parameters = [], []
    for field, condition in spec.items():
        if not isinstance(field, str) or not field:
            raise InvalidInputError(f"filter field names are non-empty strings, got {field!r}")
        column = "json_extract(metadata, ?)"
        if isinstance(condition, Mapping):
            unknown = sorted(set(condition) - set(RANGE_OPERATORS))
            if unknown or not condition:
                raise InvalidInputError(
                    f"filter on {field!r}: range operators are {', '.join(RANGE_OPERATORS)}, got {list(condition)}"
                )
            for operator, bound in condition.items():
                clauses.append(f"{column} {RANGE_OPERATORS[operator]} ?")
                parameters += [json_path(field), _scalar(field, bound)]
        elif isinstance(condition, (list, tuple)):
            if not condition:
                raise InvalidInputError(f"filter on {field!r}: an empty list matches nothing")
            clauses.append(f"{column} IN ({', '.join('?' * len(condition))})")
            parameters += [json_path(field), *(_scalar(field, value) for value in condition)]
        else:
            clauses.append(f"{column} = ?")
            parameters += [json_path(field), _scalar(field, condition)]
    return " AND ".join(clauses), parameters


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
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidInputError(f"--filter {text!r} is not valid JSON: {error}") from None
    for symbol, operator in ((">=", "gte"), ("<=", "lte"), (">", "gt"), ("<", "lt"), ("=", None)):
        field, found, value = text.partition(symbol)
        if found and field.strip():
            value = _option_value(value.strip())
            return {field.strip(): value if operator is None else {operator: value}}
    raise InvalidInputError(f"--filter {text!r}: expected FIELD=VALUE, FIELD>=VALUE, FIELD<VALUE ... or a JSON object")


def _option_value(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
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
