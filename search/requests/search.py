"""Search requests as clients send them, checked and answered: the code the CLI, the HTTP service
(:mod:`dualsearch.service`) and the demo page share.

:class:`SearchRequest` is one search, checked once whoever sent it; :func:`answer` runs it on one index
and times it; :func:`search_record` and :func:`result_record` give the one JSON schema of a search that
the CLI's ``--json``, the HTTP service and the demo's API return (docs/results.md). :func:`search_all`
and :func:`search_records` run the demo's one query over several indexes, keyed by the label each
index has on the page.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dualsearch.corpora.text_checks import check_query
from dualsearch.defaults import MAX_NPROBE, K
from dualsearch.errors import InvalidInputError, SearchFailedError
from dualsearch.ranking.boosts import parse_boosts
from dualsearch.ranking.filters import filter_condition, merge_filters, parse_filter_option
from dualsearch.ranking.weights import check_weight
from dualsearch.read.searcher import Searcher, SearchResult
from dualsearch.requests.snippets import matched_text, query_terms, snippet

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 1000  # the towers read at most 256 tokens (about 1,000+ characters of English) anyway
MAX_K = 100
MAX_BATCH_QUERIES = 64  # queries in one request: one forward pass of the query tower at the default batch size
# Results explained in one request (queries x k): each costs a pass of the document tower over its passage, so
# an unbounded request (64 queries x k=100) was thousands of passes for one unauthenticated read. One query
# at the largest k is still explained in full.
MAX_EXPLAINED_RESULTS = MAX_K
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


@dataclass(frozen=True)
class SearchRequest:
    """One search as any client asks for it: ``dualsearch search``, ``GET``/``POST /search`` and the demo
    page build one with :meth:`checked`, and :func:`answer` runs it.

    Example:
        >>> request = SearchRequest.checked("green tea", k=3, filter="topic=tea", boosts=["kind=function:0.1"])
        >>> request.queries, request.k, request.filter, request.ranking
        (('green tea',), 3, {'topic': 'tea'}, {'boosts': (('kind', 'function', 0.1),)})
        >>> SearchRequest.checked("tea", k=0)
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: k must be a whole number between 1 and 100, got 0
    """

    queries: tuple[str, ...]  # checked, stripped texts
    k: int = DEFAULT_K
    nprobe: int = 0  # 0: the index's calibrated default
    mode: str | None = None  # hybrid, dense or lexical; None: the index's default
    filter: dict | None = None  # parsed metadata conditions (dualsearch.ranking.filters)
    explain: bool = False  # explain each result
    ranking: dict = field(default_factory=dict)  # changes to the index's fusion, prior weight, boosts
    single: bool = True  # one query was sent, not a list: the record has query and results, not answers
    partial: bool = False  # a sharded index's search goes on without shards that cannot answer (flagged)

    @classmethod
    def checked(
        cls,
        query: Any,
        k: Any = DEFAULT_K,
        nprobe: Any = 0,
        mode: str | None = None,
        filter: Any = None,
        explain: bool = False,
        fusion: str | None = None,
        dense_weight: float | None = None,
        prior_weight: float | None = None,
        boosts: Any = None,
        limits: bool = True,
        partial: bool = False,
    ) -> SearchRequest:
        """A request from what a client sent, every value checked (:class:`InvalidInputError` names the
        bad one). ``query`` is a string or a list of them; ``filter`` text as ``--filter`` takes it or
        parsed conditions; ``boosts`` ``FIELD=VALUE:W`` texts. ``limits`` applies the service's bounds on
        ``k``, the number of queries and their length (the CLI, run by its user, has none)."""
        queries, single = check_queries(query, limits)
        k = check_k(k) if limits else _whole_number(k, "k", 1)
        if explain:
            check_explained(len(queries), k)
        return cls(
            queries=tuple(queries),
            k=k,
            nprobe=check_nprobe(nprobe),
            mode=mode or None,
            filter=checked_filter(filter),
            explain=bool(explain),
            ranking=ranking_overrides(fusion, dense_weight, prior_weight, boosts),
            single=single,
            partial=bool(partial),
        )


def check_queries(query: Any, limits: bool = True) -> tuple[list[str], bool]:
    """(stripped queries, whether one string was sent): text, and with ``limits`` at most
    :data:`MAX_QUERY_CHARS` characters each and at most :data:`MAX_BATCH_QUERIES` of them."""
    single = isinstance(query, str)
    queries = [query] if single else query
    if not isinstance(queries, list) or not queries:
        raise InvalidInputError("query must be a string or a non-empty list of strings")
    if limits and len(queries) > MAX_BATCH_QUERIES:
        raise InvalidInputError(f"{len(queries)} queries in one request; at most {MAX_BATCH_QUERIES}")
    for text in queries:
        check_query(text)
        if limits and len(text) > MAX_QUERY_CHARS:
            raise InvalidInputError(f"a query has {len(text):,} characters; at most {MAX_QUERY_CHARS:,}")
    return [text.strip() for text in queries], single


def check_explained(queries: int, k: int) -> None:
    """Refuse to explain more than :data:`MAX_EXPLAINED_RESULTS` results in one request (``queries`` x ``k``).

    Example:
        >>> check_explained(1, 100)
        >>> check_explained(64, 10)
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: explain covers at most 100 results a request (...); ... asks for 640: ...
    """
    if queries * k > MAX_EXPLAINED_RESULTS:
        raise InvalidInputError(
            f"explain covers at most {MAX_EXPLAINED_RESULTS} results a request (each costs a pass of the document "
            f"tower); {queries} quer{'y' if queries == 1 else 'ies'} x k={k} asks for {queries * k:,}: "
            "lower k or send fewer queries"
        )


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
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond any float
        raise InvalidInputError(f"{name} must be a whole number, got {value!r:.40}") from None
    if not number.is_integer() or number < low or (high is not None and number > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidInputError(f"{name} must be a whole number {bounds}, got {value!r:.40}")
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
    """``nprobe`` as a whole number up to :data:`~dualsearch.defaults.MAX_NPROBE`, 0 (or None) meaning the
    index's calibrated default."""
    return 0 if nprobe is None else _whole_number(nprobe, "nprobe", 0, MAX_NPROBE)


def checked_filter(text: str | dict | None) -> dict | None:
    """A filter as :func:`parse_filter_text` reads it, its conditions checked now (values, size) rather
    than when an index runs it.

    Example:
        >>> checked_filter("kind=function; year>=2010")
        {'kind': 'function', 'year': {'gte': 2010}}
        >>> checked_filter({f"field{number}": 1 for number in range(101)})
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: a filter of 101 conditions; at most 100
    """
    spec = parse_filter_text(text)
    if spec is not None:
        filter_condition(spec)
    return spec


def ranking_overrides(fusion=None, dense_weight=None, prior_weight=None, boosts=None) -> dict:
    """A request's changes to how the index ranks, as the CLI's ``--fusion``, ``--dense-weight``,
    ``--prior-weight`` and ``--boost`` make them; None (or absent) keeps the index's. ``boosts`` is a list
    of ``FIELD=VALUE:W`` texts or ``[field, value, weight]`` triples and replaces the index's boosts (an
    empty list turns them off). The values are checked when the search combines them with the index's
    settings (:class:`~dualsearch.ranking.settings.SearchSettings`); the weights are also checked here,
    against the one bound of :mod:`dualsearch.ranking.weights`, so a bad one is refused before any work.

    Example:
        >>> ranking_overrides(dense_weight=0.7, boosts=["kind=function:0.1"])
        {'dense_weight': 0.7, 'boosts': (('kind', 'function', 0.1),)}
        >>> ranking_overrides(boosts="kind")
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: boosts must be a list of FIELD=VALUE:W texts, got 'kind'
    """
    if boosts is not None and not isinstance(boosts, (list, tuple)):
        raise InvalidInputError(f"boosts must be a list of FIELD=VALUE:W texts, got {boosts!r:.60}")
    overrides = {
        "fusion": fusion or None,
        "dense_weight": None if dense_weight is None else check_weight(dense_weight, "dense_weight", 0.0, 1.0),
        "prior_weight": None if prior_weight is None else check_weight(prior_weight, "prior_weight", 0.0),
        "boosts": None if boosts is None else parse_boosts(boosts),
    }
    return {name: value for name, value in overrides.items() if value is not None}


def answer(searcher: Searcher, request: SearchRequest) -> Answer:
    """Run a checked request on one index, timing it: the one search path of the CLI, the service and
    the demo. ``nprobe`` 0 is the index's calibrated default (ignored without inverted lists)."""
    probe = _effective_nprobe(searcher, request.nprobe)
    # only a sharded index can lose a part; one index answers whole or fails
    partial = {"partial": True} if request.partial and hasattr(searcher, "missing_shards") else {}
    started = time.perf_counter()
    results = searcher.search_batch(
        list(request.queries),
        k=request.k,
        nprobe=probe or None,
        mode=request.mode,
        filter=request.filter,
        **partial,
        **request.ranking,
    )
    seconds = time.perf_counter() - started
    logger.debug("%d queries answered in %.1f ms (nprobe %d)", len(request.queries), seconds * 1000, probe)
    explanations = None
    if request.explain:
        explanations = [searcher.explain(query, found) for query, found in zip(request.queries, results)]
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


def search_record(searcher: Searcher, request: SearchRequest, found: Answer) -> dict:
    """The JSON of a search: the one schema of ``dualsearch search --json`` and ``GET``/``POST /search``
    (docs/results.md). ``version``, ``mode``, ``nprobe``, ``seconds``, then the ``query`` and its
    ``results`` (one query was sent) or ``answers``, one ``{"query", "results"}`` per query; each result
    is a :func:`result_record`.
    """
    queries = request.queries
    for results in found.results:
        _check_finite(results)
    explanations = found.explanations or [[None] * len(results) for results in found.results]
    answers = [
        {"query": text, "results": [result_record(result, text, why) for result, why in zip(results, explained)]}
        for text, results, explained in zip(queries, found.results, explanations)
    ]
    head = {
        "version": searcher.version_name,
        "mode": request.mode or searcher.settings.mode,
        "nprobe": found.nprobe,
        "seconds": round(found.seconds, 6),
    }
    missing = getattr(searcher, "missing_shards", None)
    if missing:  # a partial search of a sharded index went on without these
        head |= {"partial": True, "missing_shards": missing}
    return head | answers[0] if request.single else head | {"answers": answers}


def _check_finite(results: list[SearchResult]) -> None:
    """Refuse to answer with a score JSON cannot carry (``Infinity``, ``NaN`` are not JSON): the bounds on
    weights keep every score finite, so one that is not is a fault of ours, said plainly."""
    for result in results:
        for name in ("score", "dense_score", "lexical_score", "prior", "boost"):
            value = getattr(result, name)
            if value is not None and not math.isfinite(value):
                raise SearchFailedError(f"the {name.replace('_', ' ')} of {result.doc_id!r} is {value}, not a number")


def search_all(searchers: Mapping[str, Searcher], request: SearchRequest) -> list[IndexSearch]:
    """Run one request of one query on every index, timing each (the demo's panels)."""
    answers = []
    for name, searcher in searchers.items():
        found = answer(searcher, request)
        explanations = found.explanations[0] if found.explanations else None
        query = request.queries[0]
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
    request = SearchRequest.checked(text, k, nprobe, mode, filter)
    return [
        {
            "index": answer.name,
            "query": answer.query,
            "nprobe": answer.nprobe,
            "seconds": round(answer.seconds, 6),
            "results": [result_record(result, answer.query) for result in answer.results],
        }
        for answer in search_all(searchers, request)
    ]
