"""JSON records on disk, read one way: :func:`read_json_record` and :func:`record_from_json`.

Every JSON file dualsearch reads back into a dataclass (an index's ``manifest.json``, an exported
tower's ``tower.json`` and ``dualsearch-towers.json``, a model's ``search_settings.json``, a
``train_config.json``) goes through here, under one rule: a key the dataclass does not know is an
error that names it (a typo must not be silently ignored), except the keys an older release wrote and
the reader lists as ``legacy``; a file's format version, where it has one, is checked first (a newer
format may add keys). Values are checked against the dataclass's annotations before it is built:
``json.loads`` gives back whatever a file holds, and ``"dimension": "7"`` or ``"default_nprobe": "abc"``
would build a dataclass without complaint and fail far away (a reshape, a FAISS call).
:func:`type_problem` compares each value with its field's annotation (``int``, ``str``, ``list[str]``,
``dict[str, dict[str, Any]]``, ``X | None``, ...).

The bottom layer: it imports only :mod:`dualsearch.errors`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

Record = TypeVar("Record")


def record_from_json(
    cls: type[Record],
    data: Any,
    source: str | Path,
    error: type[Exception],
    legacy: Iterable[str] = (),
    check_types: bool = True,
) -> Record:
    """``cls`` built from the JSON value ``data`` read from ``source``, or ``error`` saying what is wrong.

    Example:
        >>> @dataclasses.dataclass
        ... class Point:
        ...     x: int
        ...     y: int = 0
        >>> record_from_json(Point, {"x": 1, "old": 2}, "p.json", ValueError, legacy=("old",))
        Point(x=1, y=0)
        >>> record_from_json(Point, {"x": 1, "z": 2}, "p.json", ValueError)
        Traceback (most recent call last):
        ...
        ValueError: p.json: unknown fields ['z']; valid fields: ['x', 'y']
    """
    if not isinstance(data, dict):
        raise error(f"{source} is damaged: not a JSON object")
    dropped = set(legacy)
    data = {name: value for name, value in data.items() if name not in dropped}
    known = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise error(f"{source}: unknown fields {unknown}; valid fields: {sorted(known)}")
    problem = type_problem(cls, data) if check_types else None
    if problem is not None:
        raise error(f"{source} is damaged: {problem}")
    try:
        return cls(**data)
    except TypeError as failure:  # a field without a default is missing
        raise error(f"{source} is damaged: {failure}") from None


def read_json_object(path: str | Path, error: type[Exception], missing: str) -> dict:
    """The JSON object in ``path``, uninterpreted, or ``error`` (``missing`` when there is no file).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "manifest.json"
        >>> _ = path.write_text("[1, 2]")
        >>> read_json_object(path, ValueError, "no manifest")
        Traceback (most recent call last):
        ...
        ValueError: ... is damaged: not a JSON object
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(missing) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as failure:
        raise error(f"{path} is damaged: {failure}") from None
    if not isinstance(data, dict):
        raise error(f"{path} is damaged: not a JSON object")
    return data


def read_json_record(
    cls: type[Record],
    path: str | Path,
    error: type[Exception],
    missing: str,
    legacy: Iterable[str] = (),
    check: Callable[[dict], None] | None = None,
) -> Record:
    """Read ``path`` into ``cls`` (:func:`record_from_json`). ``missing`` is the message when there is no
    file; ``check`` sees the raw object first (a format version) and raises to refuse it.

    Example:
        >>> import tempfile
        >>> @dataclasses.dataclass
        ... class Tower:
        ...     backend: str
        >>> path = Path(tempfile.mkdtemp()) / "tower.json"
        >>> _ = path.write_text('{"backend": "onnx"}')
        >>> read_json_record(Tower, path, ValueError, "no tower here")
        Tower(backend='onnx')
    """
    data = read_json_object(path, error, missing)
    if check is not None:
        check(data)
    return record_from_json(cls, data, path, error, legacy)


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
