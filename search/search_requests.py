"""The search behind the demo page and its API: query clean-up, per-index timing, JSON-able records.

No Gradio here: :func:`search_all` and :func:`search_records` are plain functions over open
:class:`~dualsearch.searcher.Searcher` objects, keyed by the label each index has on the page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from dualsearch.defaults import K
from dualsearch.errors import InvalidInputError
from dualsearch.filters import merge_filters, parse_filter_option
from dualsearch.searcher import Searcher, SearchResult
from dualsearch.text_checks import check_query

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 1000  # the towers read at most 256 tokens (about 1,000+ characters of English) anyway
MAX_K = 100
DEFAULT_K = K


@dataclass(frozen=True)
class IndexSearch:
    """One index's answer to a query."""

    name: str
    query: str  # the text actually encoded (possibly shortened)
    results: list[SearchResult]
    seconds: float  # query encoding + ANN search
    nprobe: int  # lists visited; 0 for indexes without inverted lists


def prepare_query(query: str | None) -> tuple[str, str]:
    """Strip ``query`` and shorten it to :data:`MAX_QUERY_CHARS` at a word; returns (text, note).

    Example:
        >>> prepare_query("  what is a generator  ")
        ('what is a generator', '')
        >>> prepare_query("word " * 1000)[1]
        'Query shortened to its first 999 of 4,999 characters (the query tower reads a few hundred tokens at most).'
    """
    text = (query or "").strip()
    if len(text) <= MAX_QUERY_CHARS:
        return text, ""
    cut = text.rfind(" ", MAX_QUERY_CHARS - 100, MAX_QUERY_CHARS + 1)
    short = text[: cut if cut > 0 else MAX_QUERY_CHARS].rstrip()
    return short, (
        f"Query shortened to its first {len(short):,} of {len(text):,} characters "
        "(the query tower reads a few hundred tokens at most)."
    )


def _whole_number(value, name: str, low: int, high: int | None = None) -> int:
    """Sliders and JSON clients send 10, 10.0 or "10"; accept whole numbers in [low, high]."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a whole number, got {value!r}") from None
    if not number.is_integer() or number < low or (high is not None and number > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidInputError(f"{name} must be a whole number {bounds}, got {value!r}")
    return int(number)


def _effective_nprobe(searcher: Searcher, nprobe: int) -> int:
    """The nprobe to use: 0 means the index's calibrated default; ignored (0) without inverted lists."""
    nlist = searcher.manifest.nlist
    if not nlist:
        return 0
    return min(nprobe or searcher.manifest.default_nprobe or 1, nlist)


def parse_filter_text(text: str | dict | None) -> dict | None:
    """The page's filter box: conditions as the CLI's ``--filter`` takes them, separated by ``;`` or
    new lines (or a JSON object, or, from the API, a dict). Blank means no filter.

    Example:
        >>> parse_filter_text("kind=function; year>=2010")
        {'kind': 'function', 'year': {'gte': 2010}}
        >>> parse_filter_text("  ") is None
        True
    """
    if text is None or isinstance(text, dict):
        return text or None
    if not isinstance(text, str):
        raise InvalidInputError(f"filter must be text or an object, got {type(text).__name__}")
    if text.strip().startswith("{"):
        return parse_filter_option(text)
    parts = [part for line in text.splitlines() for part in line.split(";") if part.strip()]
    return merge_filters([parse_filter_option(part) for part in parts]) or None


def search_all(
    searchers: Mapping[str, Searcher], query: str, k=DEFAULT_K, nprobe=0, mode: str | None = None, filter=None
) -> list[IndexSearch]:
    """Run one (already prepared, non-empty) query on every index, timing each. ``mode`` None or empty
    is each index's default; ``filter`` is what :func:`parse_filter_text` takes.

    Raises:
        InvalidInputError: ``k``, ``nprobe``, ``mode`` or ``filter`` is bad. Other SearchErrors come from the searcher.
    """
    k = _whole_number(k, "k", 1, MAX_K)
    nprobe = 0 if nprobe is None else _whole_number(nprobe, "nprobe", 0)
    conditions = parse_filter_text(filter)
    answers = []
    for name, searcher in searchers.items():
        probe = _effective_nprobe(searcher, nprobe)
        started = time.perf_counter()
        results = searcher.search(query, k=k, nprobe=probe or None, mode=mode or None, filter=conditions)
        seconds = time.perf_counter() - started
        logger.debug("%s: %d results in %.1f ms (nprobe %d)", name, len(results), seconds * 1000, probe)
        answers.append(IndexSearch(name, query, results, seconds, probe))
    return answers


def search_records(
    searchers: Mapping[str, Searcher], query: str | None, k=DEFAULT_K, nprobe=0, mode: str | None = None, filter=None
) -> list[dict]:
    """The search behind the ``/search`` API endpoint: one JSON-able dict per index.

    Each dict holds ``index``, ``query`` (as encoded), ``nprobe`` (0 without inverted lists),
    ``seconds`` and ``results`` (dicts with rank, doc_id, score, title, text, metadata, passage,
    dense_score, lexical_score).

    Raises:
        InvalidInputError: an empty query, ``k``/``nprobe`` out of range, an unknown mode, a bad filter.

    Example:
        >>> records = search_records({"tiny": Searcher.open("tiny-index")}, "espresso", k=1)  # doctest: +SKIP
        >>> records[0]["results"][0]["doc_id"]  # doctest: +SKIP
        'coffee-espresso'
    """
    if query is not None:
        check_query(query)  # an API client may send an int, a list, a lone surrogate: a message, not a traceback
    text, _ = prepare_query(query)
    if not text:
        raise InvalidInputError("empty query: type some text to search for")
    return [
        {
            "index": answer.name,
            "query": answer.query,
            "nprobe": answer.nprobe,
            "seconds": round(answer.seconds, 6),
            "results": [asdict(result) for result in answer.results],
        }
        for answer in search_all(searchers, text, k, nprobe, mode, filter)
    ]
