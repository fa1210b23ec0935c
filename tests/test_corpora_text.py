"""What counts as usable text: lone surrogates and invisible-only strings are caught."""

from __future__ import annotations

import pytest

from dualsearch.corpora.text import is_blank, lone_surrogate_position, text_problem


def test_a_lone_surrogate_is_found_where_it_is():
    assert lone_surrogate_position("ok \ud800 x") == 3
    assert lone_surrogate_position("caf\udce9") == 3  # what a non-UTF-8 byte in argv becomes
    assert lone_surrogate_position("café 🍵 緑茶") is None


@pytest.mark.parametrize("text", ["", "   ", "\x00", "\u200b\u200c\u200d\ufeff", "\t\n\x1b"])
def test_invisible_only_text_is_blank(text):
    assert is_blank(text)


@pytest.mark.parametrize("text", ["a", "🍵", "42", "?", "é", " 緑 "])
def test_visible_text_is_not_blank(text):
    assert not is_blank(text)


@pytest.mark.parametrize(
    ("value", "problem"),
    [(b"x", "must be a string, got bytes"), (7, "must be a string, got int"), ("\x00", "is empty")],
)
def test_text_problem_says_what_is_wrong(value, problem):
    assert text_problem(value) == problem
