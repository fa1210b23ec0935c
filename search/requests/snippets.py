"""Plain-text snippets of results: the passage that matched, shortened around the query's words.

Shared by the HTTP service (:mod:`dualsearch.service`) and the demo page, which escapes and marks
the same snippet. Nothing here produces markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dualsearch.read.searcher import SearchResult

SNIPPET_CHARS = 320  # characters of document text shown per result
MAX_MARKED_TERMS = 32  # query words highlighted at most (a 10,000-character query must stay cheap)
_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it of on or that the this to what when "
    "where which who why with you your my me we".split()
)


def _stem(word: str) -> str:
    """Drop one common English ending so "escape" also marks "escaping" (a root keeps 4+ letters)."""
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def query_terms(query: str) -> list[str]:
    """Distinct lower-cased word stems of ``query`` worth highlighting (no stop words), longest first.

    Example:
        >>> query_terms("How do I parse command-line arguments?")
        ['argument', 'command', 'line', 'pars']
    """
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if word not in _STOPWORDS and (len(word) > 1 or not word.isascii()):
            seen.setdefault(_stem(word))
            if len(seen) == MAX_MARKED_TERMS:
                break
    return sorted(seen, key=lambda word: (-len(word), word))


def term_pattern(terms: Sequence[str]) -> re.Pattern | None:
    if not terms:
        return None
    # A term matches at the start of a word and takes the rest of it: "parse" marks "parser".
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(term) for term in terms) + r")\w*", re.IGNORECASE)


def matched_text(result: SearchResult) -> str:
    """The passage of the result that matched best (its whole text when unknown or when it is all).

    Example:
        >>> matched_text(SearchResult(1, "d", 0.5, "", "first part. second part", passage=(12, 23)))
        'second part'
    """
    if result.passage is None:
        return result.text
    start, end = result.passage
    return result.text[start:end]


def snippet(text: str, terms: Sequence[str], width: int = SNIPPET_CHARS) -> str:
    """About ``width`` characters of ``text`` (whitespace collapsed) around the most query words, unescaped.

    Example:
        >>> snippet("alpha beta gamma", ["beta"])
        'alpha beta gamma'
    """
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    starts = [match.start() for match in term_pattern(terms).finditer(text)] if terms else []
    start = max(0, min(_best_window(starts[:200], width) - width // 4, len(text) - width))
    if start:  # begin at a word
        space = text.find(" ", start, start + 30)
        start = space + 1 if space >= 0 else start
    end = start + width
    if end < len(text):  # end at a word
        space = text.rfind(" ", end - 30, end)
        end = space if space > start else end
    return ("… " if start else "") + text[start:end] + (" …" if end < len(text) else "")


def _best_window(starts: list[int], width: int) -> int:
    """The match position that begins the window of ``width`` holding the most matches (0 if none)."""
    best, best_count = 0, 0
    for index, start in enumerate(starts):
        count = sum(1 for other in starts[index:] if other < start + width * 3 // 4)
        if count > best_count:
            best, best_count = start, count
    return best
