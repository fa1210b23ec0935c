"""Checks on the text a caller hands the engine (queries, document ids), before any work is done.

The rules are those of :mod:`dualsearch.corpora.text`: a string, valid Unicode (no lone surrogate,
as a non-UTF-8 byte in a command-line argument becomes), and not blank (NUL and zero-width
characters alone count as blank).
"""

from __future__ import annotations

from collections.abc import Iterable

from dualsearch.corpora.text import text_problem
from dualsearch.errors import InvalidInputError


def check_query(query: object, where: str = "", error: type[Exception] = InvalidInputError) -> str:
    """``query`` itself if it is usable text, else ``error`` saying why (after ``where``, a file and line,
    when given): the one check of a query, whether a client searches with it or a model trains on it.

    Example:
        >>> check_query("green tea")
        'green tea'
        >>> check_query(b"vitamin")
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: the query must be a string, got bytes
        >>> check_query("\\x00\\u200b")
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: empty query: '\\x00\\u200b' shows no text to search for
        >>> check_query("\\ud800", "q.jsonl:3")
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: q.jsonl:3: the query is not valid Unicode (a lone surrogate at character 0)
    """
    problem = text_problem(query)
    if problem is None:
        return query
    message = (
        f"empty query: {query!r:.60} shows no text to search for" if problem == "is empty" else f"the query {problem}"
    )
    raise error(f"{where}: {message}" if where else message)


def check_doc_ids(doc_ids: Iterable[object]) -> set[str]:
    """The ids as a set, or :class:`InvalidInputError` naming the first that no index can hold.

    Example:
        >>> sorted(check_doc_ids(["a", "b", "a"]))
        ['a', 'b']
    """
    ids = set()
    for doc_id in doc_ids:
        problem = text_problem(doc_id)
        if problem is not None:
            raise InvalidInputError(f"document id {doc_id!r} {problem}")
        ids.add(doc_id)
    return ids
