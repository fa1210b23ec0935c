"""Search requests as clients send them, checked and answered: the code the CLI, the HTTP service
(:mod:`dualsearch.service`) and the demo page share.

:func:`answer` runs one request on one index and times it; :func:`search_record` and
:func:`result_record` give the one JSON schema of a search that the CLI's ``--json``, the HTTP service
and the demo's API return (docs/results.md). :func:`search_all` and :func:`search_records` run the demo's one
query over several indexes, keyed by the label each index has on the page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from dualsearch.corpora.text_checks import check_query
from dualsearch.defaults import K
from dualsearch.errors import InvalidInputError
from dualsearch.ranking.boosts import parse_boosts
from dualsearch.ranking.filters import merge_filters, parse_filter_option
from dualsearch.read.searcher import Searcher, SearchResult
from dualsearch.requests.snippets import matched_text, query_terms, snippet

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 1000  # the towers read at most 256 tokens (about 1,000+ characters of English) anyway
MAX_K = 100
MAX_BATCH_QUERIES = 64  # queries in one request: one forward pass of the query tower at the default batch size
DEFAULT_K = K


@dataclass(frozen=True)
class Answer:
    """One index's answer to a list of queries."""

    results: list[list[SearchResult]]  # per query, best first
    seconds: float  # query encoding + search, all queries (explanations not included)
    nprobe: int  # lists visited; 0 for indexes without inverted lists
    explanations: list[list[dict]] | None = None  # per query, per result (Searcher.explain), when asked


@dataclass(frozen=True)
class IndexSearch:
    """One index's answer to a query."""

    name: str
    query: str  # the text actually encoded (possibly shortened)
    results: list[SearchResult]
    seconds: float  # query encoding + ANN search
    nprobe: int  # lists visited; 0 for indexes without inverted lists
    explanations: list[dict] | None = None  # per result, when asked


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


def check_k(k) -> int:
    """``k`` as a whole number from 1 to :data:`MAX_K` (sliders and JSON send 10, 10.0 or "10")."""
    return _whole_number(k, "k", 1, MAX_K)


def check_nprobe(nprobe) -> int:
    """``nprobe`` as a whole number, 0 (or None) meaning the index's calibrated default."""
    return 0 if nprobe is None else _whole_number(nprobe, "nprobe", 0)


def ranking_overrides(fusion=None, dense_weight=None, prior_weight=None, boosts=None) -> dict:
    """A request's changes to how the index ranks, as the CLI's ``--fusion``, ``--dense-weight``,
    ``--prior-weight`` and ``--boost`` make them; None (or absent) keeps the index's. ``boosts`` is a list
    of ``FIELD=VALUE:W`` texts or ``[field, value, weight]`` triples and replaces the index's boosts (an
    empty list turns them off). The values are checked when the search combines them with the index's
    settings (:class:`~dualsearch.ranking.settings.SearchSettings`).

    Example:
        >>> ranking_overrides(dense_weight=0.7, boosts=["kind=function:0.1"])
        {'dense_weight': 0.7, 'boosts': (('kind', 'function', 0.1),)}
        >>> ranking_overrides(boosts="kind")
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: boosts must be a list of FIELD=VALUE:W texts, got 'kind'
    """
    if boosts is not None and not isinstance(boosts, (list, tuple)):
        raise InvalidInputError(f"boosts must be a list of FIELD=VALUE:W texts, got {boosts!r}")
    overrides = {
        "fusion": fusion or None,
        "dense_weight": dense_weight,
        "prior_weight": prior_weight,
        "boosts": None if boosts is None else parse_boosts(boosts),
    }
    return {name: value for name, value in overrides.items() if value is not None}


def answer(
    searcher: Searcher,
    queries: list[str],
    k: int,
    nprobe: int = 0,
    mode: str | None = None,
    filter=None,
    explain: bool = False,
    ranking: dict | None = None,
) -> Answer:
    """Run checked queries on one index, timing them: the one search path of the service and the demo.

    Args:
        searcher: An open searcher.
        queries: Non-empty query texts (checked by the caller).
        k, nprobe: As :func:`check_k` and :func:`check_nprobe` return them.
        mode: ``hybrid``, ``dense`` or ``lexical``; None or empty for the index's default.
        filter: Parsed conditions (:func:`parse_filter_text`), or None.
        explain: Also explain each result (:meth:`~dualsearch.read.searcher.Searcher.explain`).
        ranking: Changes to the index's fusion, prior weight and boosts (:func:`ranking_overrides`).
    """
    probe = _effective_nprobe(searcher, nprobe)
    started = time.perf_counter()
    results = searcher.search_batch(
        queries, k=k, nprobe=probe or None, mode=mode or None, filter=filter, **(ranking or {})
    )
    seconds = time.perf_counter() - started
    logger.debug("%d queries answered in %.1f ms (nprobe %d)", len(queries), seconds * 1000, probe)
    explanations = [searcher.explain(query, found) for query, found in zip(queries, results)] if explain else None
    return Answer(results, seconds, probe, explanations)


def result_record(result: SearchResult, query: str, explanation: dict | None = None) -> dict:
    """A result as the HTTP API returns it: rank, id, score, title, a plain-text snippet of the passage
    that matched (around the query's words), its character span in the text, metadata, the two
    sides' scores, the document's prior and its boosts' sum (each None when none joined the score).

    Example:
        >>> record = result_record(SearchResult(1, "d1", 0.5, "Tea", "Green tea.", passage=(0, 10)), "tea")
        >>> record["id"], record["snippet"], record["passage"]
        ('d1', 'Green tea.', [0, 10])
    """
    record = {
        "rank": result.rank,
        "id": result.doc_id,
        "score": result.score,
        "title": result.title,
        "snippet": snippet(matched_text(result), query_terms(query)),
        "passage": list(result.passage) if result.passage is not None else None,
        "metadata": result.metadata,
        "dense_score": result.dense_score,
        "lexical_score": result.lexical_score,
        "prior": result.prior,
        "boost": result.boost,
    }
    return record if explanation is None else record | {"explanation": explanation}


def search_record(searcher: Searcher, queries: list[str], found: Answer, mode: str | None, single: bool) -> dict:
    """The JSON of a search: the one schema of ``dualsearch search --json`` and ``GET``/``POST /search``
    (docs/results.md). ``version``, ``mode``, ``nprobe``, ``seconds``, then the ``query`` and its
    ``results`` (``single``: one query was sent) or ``answers``, one ``{"query", "results"}`` per query;
    each result is a :func:`result_record`.
    """
    explanations = found.explanations or [[None] * len(results) for results in found.results]
    answers = [
        {"query": text, "results": [result_record(result, text, why) for result, why in zip(results, explained)]}
        for text, results, explained in zip(queries, found.results, explanations)
    ]
    head = {
        "version": searcher.version_dir.name,
        "mode": mode or searcher.settings.mode,
        "nprobe": found.nprobe,
        "seconds": round(found.seconds, 6),
    }
    return head | answers[0] if single else head | {"answers": answers}


def search_all(
    searchers: Mapping[str, Searcher],
    query: str,
    k=DEFAULT_K,
    nprobe=0,
    mode: str | None = None,
    filter=None,
    explain: bool = False,
) -> list[IndexSearch]:
    """Run one (already prepared, non-empty) query on every index, timing each. ``mode`` None or empty
    is each index's default; ``filter`` is what :func:`parse_filter_text` takes; ``explain`` adds each
    result's explanation.

    Raises:
        InvalidInputError: ``k``, ``nprobe``, ``mode`` or ``filter`` is bad. Other SearchErrors come from the searcher.
    """
    k, nprobe, conditions = check_k(k), check_nprobe(nprobe), parse_filter_text(filter)
    answers = []
    for name, searcher in searchers.items():
        found = answer(searcher, [query], k, nprobe, mode, conditions, explain)
        explanations = found.explanations[0] if found.explanations else None
        answers.append(IndexSearch(name, query, found.results[0], found.seconds, found.nprobe, explanations))
    return answers


def search_records(
    searchers: Mapping[str, Searcher], query: str | None, k=DEFAULT_K, nprobe=0, mode: str | None = None, filter=None
) -> list[dict]:
    """The search behind the ``/search`` API endpoint: one JSON-able dict per index.

    Each dict holds ``index``, ``query`` (as encoded), ``nprobe`` (0 without inverted lists),
    ``seconds`` and ``results``, each a :func:`result_record` as the HTTP service and
    ``dualsearch search --json`` give it.

    Raises:
        InvalidInputError: an empty query, ``k``/``nprobe`` out of range, an unknown mode, a bad filter.

    Example:
        >>> records = search_records({"tiny": Searcher.open("tiny-index")}, "espresso", k=1)  # doctest: +SKIP
        >>> records[0]["results"][0]["id"]  # doctest: +SKIP
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
            "results": [result_record(result, answer.query) for result in answer.results],
        }
        for answer in search_all(searchers, text, k, nprobe, mode, filter)
    ]
