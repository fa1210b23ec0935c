"""Text printed on a terminal shows control characters as escapes."""

from __future__ import annotations

import pytest

from dualsearch.cli.terminal import for_terminal


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("two\nlines", "two\\nlines"),
        ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
        ("abc\u202edef", "abc\\u202edef"),
        ("line\u2028sep", "line\\u2028sep"),
        ("bad\udcffbyte", "bad\\udcffbyte"),
    ],
)
def test_control_characters_are_shown_as_escapes(text, shown):
    assert for_terminal(text) == shown


def test_ordinary_text_is_unchanged():
    assert for_terminal("Café 🍵 緑茶 — tea\ttime") == "Café 🍵 緑茶 — tea\\ttime"
