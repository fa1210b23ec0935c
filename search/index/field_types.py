"""Check values read from JSON against a dataclass's annotations, so a field added later is checked too.

``json.loads`` gives back whatever a file holds: ``"dimension": "7"`` or ``"default_nprobe": "abc"``
build a dataclass without complaint and fail far away (a reshape, a FAISS call). :func:`type_problem`
compares each value with its field's annotation (``int``, ``str``, ``list[str]``,
``dict[str, dict[str, Any]]``, ``X | None``, ...) before the object is built.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


def type_problem(cls: type, data: dict[str, Any]) -> str | None:
    """The first field of ``data`` whose value does not fit ``cls``'s annotation, described; or None.

    Missing fields are left to the dataclass (those with defaults may be absent).

    Example:
        >>> @dataclasses.dataclass
        ... class Point:
        ...     x: int
        ...     tags: list[str]
        >>> type_problem(Point, {"x": 1, "tags": ["a"]}) is None
        True
        >>> type_problem(Point, {"x": "1", "tags": ["a"]})
        "field 'x' must be int, got str '1'"
        >>> type_problem(Point, {"x": 1, "tags": [2]})
        "field 'tags' must be list[str], got list [2]"
    """
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in data and not fits(data[field.name], hints[field.name]):
            value = data[field.name]
            expected = getattr(hints[field.name], "__name__", None)
            expected = expected if isinstance(hints[field.name], type) and expected else str(hints[field.name])
            return f"field {field.name!r} must be {expected}, got {type(value).__name__} {value!r:.60}"
    return None


def fits(value: Any, annotation: Any) -> bool:
    """Whether a JSON value fits a type annotation (``bool`` is not an ``int`` here; an ``int`` is a ``float``).

    Example:
        >>> fits(3, int), fits(True, int), fits(3, float), fits({"a": [1]}, dict[str, list[int]])
        (True, False, True, True)
    """
    if annotation is Any:
        return True
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, option) for option in arguments)
    if origin is list:
        return isinstance(value, list) and all(fits(item, arguments[0]) for item in value) if arguments else True
    if origin is dict:
        if not isinstance(value, dict):
            return False
        key_type, value_type = arguments or (Any, Any)
        return all(fits(key, key_type) and fits(item, value_type) for key, item in value.items())
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True  # an annotation JSON cannot express (a Literal, a TypeVar): left to the dataclass
