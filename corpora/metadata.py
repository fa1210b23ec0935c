"""What a metadata value may hold: one rule for documents from every reader and the service, and for
the values filters and boosts compare with (:mod:`dualsearch.ranking.filters`, ``boosts``).

A metadata value is a JSON scalar or a list or object of them:

- text that is valid Unicode (no lone surrogate, which neither SQLite nor a JSON encoder can write),
- a boolean or null,
- a finite number (JSON has no NaN or Infinity),
- an integer within 64 bits (SQLite's INTEGER: a larger one cannot be bound to a query, and Python
  cannot even print one of more than 4,300 digits),
- lists and objects nested at most :data:`MAX_NESTING` levels (a deeper value would exhaust Python's
  recursion when it is checked, stored or sent back).

Other objects a reader can yield (a Parquet date, a decimal) become their text. :func:`parse_json` is
the one JSON parser of untrusted text (corpus lines, request bodies, ``--filter`` options): it fails
only with a :class:`json.JSONDecodeError` that says why, never a ``RecursionError`` or ``ValueError``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from typing import Any

from dualsearch.corpora.text import text_problem
from dualsearch.errors import CorpusError

MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1
MAX_NESTING = 32  # levels of lists and objects inside one metadata field
# A JSON text (a corpus line, a request body, a filter) may nest this deep: a record, its metadata and
# the fields' own nesting fit, and the parser stays far below Python's recursion limit.
MAX_JSON_NESTING = 100
_JSON_SYNTAX = re.compile(r'[\[\]{}"\\]')  # what opens or closes a level or a string


def scalar_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a metadata scalar (or the value a filter or a boost compares with), or None.

    Example:
        >>> scalar_problem("tea"), scalar_problem(2**63)
        (None, 'holds an integer beyond 64 bits (9223372036854775808)')
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if MIN_INTEGER <= value <= MAX_INTEGER:
            return None
        shown = str(value) if value.bit_length() < 64 * 8 else f"{value.bit_length()} bits long"
        return f"holds an integer beyond 64 bits ({shown})"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"holds {value}, which JSON cannot represent"
    if isinstance(value, str):
        problem = text_problem(value)
        return None if problem in (None, "is empty") else f"holds text that {problem}"
    return f"holds a {type(value).__name__}, not a string, number, boolean or null"


def checked_metadata(metadata: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``metadata`` if every field follows the rule (other objects turned into text), else :class:`CorpusError`
    naming ``where`` and the field.

    Example:
        >>> checked_metadata({"year": 2024, "tags": ["a", "b"]}, "c.jsonl:1")
        {'year': 2024, 'tags': ['a', 'b']}
        >>> checked_metadata({"n": float("nan")}, "c.jsonl:1")
        Traceback (most recent call last):
        ...
        dualsearch.errors.CorpusError: c.jsonl:1: metadata field 'n' holds nan, which JSON cannot represent
    """
    checked = {}
    for key, value in metadata.items():
        key = _checked_key(key, f"{where}: metadata field name")
        checked[key] = _checked_value(value, f"{where}: metadata field {key!r:.60}", 0)
    return checked


def _checked_key(key: Any, what: str) -> str:
    key = str(key)
    problem = text_problem(key)
    if problem not in (None, "is empty"):
        raise CorpusError(f"{what} {key!r:.60} {problem}")
    return key


def _checked_value(value: Any, what: str, depth: int) -> Any:
    """``value`` checked, ``depth`` levels of lists and objects below its field (recursion stops at the bound)."""
    if isinstance(value, (Mapping, list, tuple)):
        if depth >= MAX_NESTING:
            raise CorpusError(f"{what} is nested deeper than {MAX_NESTING} levels of lists and objects")
        if isinstance(value, Mapping):
            return {
                _checked_key(key, f"{what} holds a key"): _checked_value(item, what, depth + 1)
                for key, item in value.items()
            }
        return [_checked_value(item, what, depth + 1) for item in value]
    if not isinstance(value, (str, int, float, bool)) and value is not None:
        value = str(value)  # a date or a decimal from Parquet or a dataset: its text
    problem = scalar_problem(value)
    if problem is not None:
        raise CorpusError(f"{what} {problem}")
    return value


def parse_json(text: str) -> Any:
    """``json.loads(text)``, failing only with :class:`json.JSONDecodeError`: also for nesting deeper than
    :data:`MAX_JSON_NESTING` (a ``RecursionError`` otherwise, when parsing or later) and for an integer of
    more digits than Python converts (a ``ValueError`` otherwise).

    Example:
        >>> parse_json('{"a": [1, 2]}')
        {'a': [1, 2]}
        >>> parse_json("[" * 200 + "]" * 200)
        Traceback (most recent call last):
        ...
        json.decoder.JSONDecodeError: nested deeper than 100 levels: line 1 column 101 (char 100)
    """
    try:
        value = json.loads(text)  # at C speed; the depth is checked on what it gives
    except RecursionError:
        value, too_deep = None, True
    except json.JSONDecodeError:
        raise
    except ValueError:  # Python's limit on the digits it converts to an int
        raise _long_integer_error(text) from None
    else:
        too_deep = text.count("[") + text.count("{") > MAX_JSON_NESTING and _deeper_than(value, MAX_JSON_NESTING)
    if too_deep:  # a refusal: the slower scan of the text finds where
        position = _nesting_beyond_limit(text)
        raise json.JSONDecodeError(f"nested deeper than {MAX_JSON_NESTING} levels", text, position or 0)
    return value


def _long_integer_error(text: str) -> json.JSONDecodeError:
    limit = sys.get_int_max_str_digits()
    found = re.search(rf"\d{{{limit + 1},}}", text)
    if found is None:  # not expected: json.loads raised for another reason
        return json.JSONDecodeError(f"an integer of more than {limit:,} digits", text, 0)
    return json.JSONDecodeError(f"an integer of {len(found.group()):,} digits", text, found.start())


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects in ``value`` nest more than ``limit`` levels (walked a level at a time,
    without recursion)."""
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):
        if not level:
            return False
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (dict, list))
        ]
    return bool(level)


def _nesting_beyond_limit(text: str) -> int | None:
    """The position where ``text`` opens its (MAX_JSON_NESTING + 1)-th level, or None; brackets inside
    strings do not count."""
    depth, in_string, escaped = 0, False, -1
    for match in _JSON_SYNTAX.finditer(text):
        position, symbol = match.start(), match.group()
        if position == escaped:  # the character after a backslash in a string
            continue
        if in_string:
            if symbol == "\\":
                escaped = position + 1
            elif symbol == '"':
                in_string = False
        elif symbol == '"':
            in_string = True
        elif symbol in "[{":
            depth += 1
            if depth > MAX_JSON_NESTING:
                return position
        elif symbol in "]}":
            depth -= 1
    return None
