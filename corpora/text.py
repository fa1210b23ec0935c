"""What counts as usable text, for documents (:mod:`dualsearch.corpora.records`) and queries alike.

Two traps this module closes, both seen in practice:

- A Python ``str`` can hold a lone surrogate (``"\\ud800"``): JSON's ``\\ud800`` escape decodes to one,
  and so does a command-line argument with a byte that is not UTF-8 (Python keeps it as
  ``"\\udcxx"``). Such a string cannot be encoded to UTF-8, so tokenizers, SQLite and FAISS fail on
  it with a ``UnicodeEncodeError`` long after validation.
- ``str.strip()`` keeps NUL, other control characters and zero-width characters, so a text made only
  of them passes an "is it empty?" check while holding nothing a tower can read.
"""

from __future__ import annotations

import unicodedata

# Unicode categories of characters that show something: letters, marks, numbers, punctuation, symbols.
_VISIBLE_CATEGORIES = frozenset("LMNPS")


def lone_surrogate_position(text: str) -> int | None:
    """The index of the first character that cannot be encoded as UTF-8, or None if there is none.

    Example:
        >>> lone_surrogate_position("caf\\udce9"), lone_surrogate_position("café")
        (3, None)
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def is_blank(text: str) -> bool:
    """True when ``text`` shows nothing: only whitespace, control, format (zero-width) characters.

    Example:
        >>> is_blank(" \\x00\\u200b\\n"), is_blank(" tea ")
        (True, False)
    """
    return not any(unicodedata.category(character)[0] in _VISIBLE_CATEGORIES for character in text)


def text_problem(value: object) -> str | None:
    """Why ``value`` is not usable text ("not a string", "empty", "not valid Unicode"), or None.

    Example:
        >>> text_problem("green tea"), text_problem(b"tea"), text_problem("\\u200b"), text_problem("a\\ud800")
        (None, 'must be a string, got bytes', 'is empty', 'is not valid Unicode (a lone surrogate at character 1)')
    """
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    position = lone_surrogate_position(value)
    if position is not None:
        return f"is not valid Unicode (a lone surrogate at character {position})"
    if is_blank(value):
        return "is empty"
    return None
