"""Text from documents and errors, made safe to print on a terminal.

An id, a title or a path can hold a newline (one result would print as two, one error as two
lines), an escape sequence (``\\x1b[2J`` clears the screen, others retitle the window) or a
right-to-left override that reorders what follows. :func:`for_terminal` shows each such character
as its Python escape instead, so what is printed is what the text holds.
"""

from __future__ import annotations

import unicodedata

# Control characters (Cc), line and paragraph separators, and the bidirectional embeddings,
# overrides and isolates: the characters that move the cursor or reorder the line.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _unsafe(character: str) -> bool:
    return unicodedata.category(character) in ("Cc", "Cs", "Zl", "Zp") or character in _BIDI_CONTROLS


def for_terminal(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\n``, ``\\x1b``, ``\\u202e``).

    Example:
        >>> print(for_terminal("two\\nlines \\x1b[31mred\\x1b[0m café"))
        two\\nlines \\x1b[31mred\\x1b[0m café
    """
    return "".join(
        character.encode("unicode_escape", "backslashreplace").decode("ascii") if _unsafe(character) else character
        for character in text
    )
