"""The routes of ``dualsearch serve``: :func:`create_app`.

=========================  ======================================================  ===============
route                      what                                                    auth
=========================  ======================================================  ===============
GET  /search?q=&k=...      one query                                               reads
POST /search               JSON: a query or a list of them, k, nprobe, mode, ...   reads
GET  /documents/{id}       a stored document                                       reads
POST /documents?wait=      add or replace documents (JSON list or JSON lines)      token
DELETE /documents/{id}     remove a document (``?wait=true`` as for POST)          token
GET  /health               200 with the served version, 503 while no index         none
GET  /stats                documents, version, towers, requests, latencies         reads
GET  /openapi.json, /docs  the OpenAPI description, and Swagger UI's page of it    reads
=========================  ======================================================  ===============

"reads" are open when the server listens on loopback (which then answers only to a Host header naming
this machine: :mod:`~dualsearch.service.hosts`) and need the token otherwise. Searches run
in the server's thread pool (the towers release the GIL while they compute). Writes are acknowledged
once in the write-ahead log (202), and searchable at the next refresh, within ``refresh_seconds``;
with ``wait=true`` the answer (200) comes once they are (:mod:`~dualsearch.service.writes`).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which name classes
# imported inside create_app (FastAPI loads only when a service is built).
import contextlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

from dualsearch.corpora.document import Document
from dualsearch.corpora.metadata import parse_json
from dualsearch.corpora.records import FieldNames, validated_documents
from dualsearch.defaults import REFRESH_SECONDS
from dualsearch.errors import DualsearchError, InvalidInputError, require
from dualsearch.read.live_index import LiveIndex
from dualsearch.read.searcher import Searcher
from dualsearch.requests.search import MAX_BATCH_QUERIES, MAX_K, SearchRequest, answer, search_record
from dualsearch.service.auth import TokenGate, TokenRequired, is_loopback
from dualsearch.service.docs import add_docs_routes
from dualsearch.service.errors import ServiceError, classify, error_body
from dualsearch.service.hosts import LoopbackHostOnly
from dualsearch.service.limits import BODY_SECONDS, MAX_BODY_BYTES, BodyLimit
from dualsearch.service.stats import RequestStats
from dualsearch.service.writes import ServiceWrites
from dualsearch.version import __version__

logger = logging.getLogger(__name__)
WAIT_HELP = "answer once the write is searchable (200), not once it is logged (202)"
PARTIAL_HELP = (
    "a sharded index (serve --ray): answer without the shards that cannot answer, flagged in the answer's "
    "partial and missing_shards, instead of 503"
)
WRITE_THREADS = 16  # writes at once; they mostly wait (for the log's turn, for a refresh), computing little


@dataclass(frozen=True)
class ServiceSettings:
    """How the service guards itself."""

    token: str | None = None  # bearer token for writes (and reads when reads_need_token)
    reads_need_token: bool = False  # True when listening beyond loopback
    # 400 for a Host header that does not name this machine (DNS rebinding): for a server on loopback,
    # whose reads are open
    check_host: bool = True
    max_body_bytes: int = MAX_BODY_BYTES  # 413 beyond it, as the route reads the body
    body_seconds: float = BODY_SECONDS  # 408 when a body has not all arrived this long after its request began
    # Requests searched at once; the others wait in the event loop. With AnyIO's default, 40 threads,
    # every request ran at once and they contended for the cores; twice the cores gave more throughput
    # and a lower p95 at every client count (bench/service_load.py, results/service_load.json). The
    # micro-batching encoder still batches whatever runs at once.
    worker_threads: int = field(default_factory=lambda: 2 * (os.cpu_count() or 1))
    refresh_seconds: float = REFRESH_SECONDS  # logged writes become searchable this often (0: after each)

    @classmethod
    def for_bind(cls, host: str, token: str | None, **settings) -> "ServiceSettings":
        """The guards of a server listening on ``host``. On loopback reads are open, so the Host header
        must name this machine; beyond it every route but ``/health`` needs the token, which a page of
        another site cannot send, and clients may use whatever name the operator gives the server.

        Example:
            >>> ServiceSettings.for_bind("0.0.0.0", "a-token-of-16-chars").check_host
            False
        """
        loopback = is_loopback(host)
        return cls(token=token, reads_need_token=not loopback, check_host=loopback, **settings)


def search_response(searcher: Searcher, request: SearchRequest) -> dict:
    """The JSON of a search (:func:`~dualsearch.requests.search.search_record`); with ``explain``, each
    result has an ``explanation`` (:mod:`dualsearch.ranking.explain`)."""
    return search_record(searcher, request, answer(searcher, request))


def parse_documents(body: bytes) -> list[Document]:
    """Documents from a request body: a JSON list of records, one JSON object (pretty-printed or not),
    or JSON lines read as ``dualsearch add`` reads a ``.jsonl`` file (a byte order mark first is
    skipped; a line ends at ``\\n`` alone, so U+2028 or U+0085 inside a string is text). Records take
    the corpus fields (``id`` or ``_id``, ``title``, ``text``, anything else as metadata)."""
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise InvalidInputError(f"the body is not UTF-8 (byte {error.start})") from None
    if not text.strip():
        raise InvalidInputError("no documents in the body: send a JSON list of records or JSON lines")
    located = _json_records(text)
    for where, record in located:
        if not isinstance(record, dict):
            raise InvalidInputError(f"{where}: a record is a JSON object, got {type(record).__name__}")
    return list(validated_documents(located, FieldNames()))


def _json_records(text: str) -> list[tuple[str, Any]]:
    """(where, record) pairs: the body as one JSON value (a list of records, or one record), else, when
    more follows a first whole value, as JSON lines."""
    try:
        value = parse_json(text)  # bounded nesting and integer digits (dualsearch.corpora.metadata)
    except json.JSONDecodeError as error:
        if error.msg != "Extra data":
            raise InvalidInputError(
                f"the body is not JSON or JSON lines: {error.msg} at line {error.lineno}, column {error.colno}"
            ) from None
        return _json_lines(text)
    if isinstance(value, list):
        return [(f"record {number}", record) for number, record in enumerate(value, 1)]
    return [("record 1", value)]


def _json_lines(text: str) -> list[tuple[str, Any]]:
    located = []
    for number, line in enumerate(text.split("\n"), 1):  # not splitlines(): it also splits at U+2028, U+0085
        if not line.strip():
            continue
        try:
            located.append((f"line {number}", parse_json(line)))
        except json.JSONDecodeError as error:
            raise InvalidInputError(
                f"line {number} of the body is not JSON: {error.msg} at column {error.colno}"
            ) from None
    return located


def create_app(live: LiveIndex, settings: ServiceSettings | None = None, writes: ServiceWrites | None = None):
    """The FastAPI application serving ``live`` (OpenAPI docs at ``/docs``); ``writes``: how writes are
    taken (default: this server's write-ahead log; :mod:`dualsearch.service.ray_serving` routes them to shards).

    Example:
        >>> app = create_app(LiveIndex("my-index", load_encoder))  # doctest: +SKIP
    """
    require("fastapi", "serve", "the HTTP service")
    from fastapi import Depends, FastAPI, Query, Request, Security
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from fastapi.security import HTTPBearer
    from pydantic import BaseModel, Field
    from starlette.concurrency import run_in_threadpool
    from starlette.convertors import register_url_convertor
    from starlette.exceptions import HTTPException
    from starlette.routing import Match

    settings = settings or ServiceSettings()
    register_url_convertor("document_id", _document_id_convertor())
    stats = RequestStats()
    writes = writes or ServiceWrites(live, settings.refresh_seconds)
    write_threads: list = [None]  # the writes' thread limiter, made in the lifespan's event loop

    async def writing(function):
        import anyio.to_thread

        return await anyio.to_thread.run_sync(function, limiter=write_threads[0])

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        # writes have threads of their own: one waiting for its refresh (wait=true), or queued at the log,
        # must not hold a thread searches need, nor queue behind them
        write_threads[0] = anyio.CapacityLimiter(WRITE_THREADS)
        await run_in_threadpool(writes.start)  # the log's writes a crash left unapplied, before any request
        try:
            yield
        finally:
            await run_in_threadpool(writes.close)

    app = FastAPI(
        title="dualsearch",
        version=__version__,
        description="Semantic search over one index directory: query and document towers, BM25, filters.",
        lifespan=lifespan,
        docs_url=None,  # service.docs serves /docs, without a CDN and behind the reads' token
        redoc_url=None,
        openapi_url=None,
    )
    # In the OpenAPI description: the routes that need the token say so, and /docs can send one
    bearer = HTTPBearer(
        auto_error=False, scheme_name="token", description="the server's token (--token-file or $DUALSEARCH_TOKEN)"
    )

    def token_check(required: TokenRequired):
        # async: a sync dependency costs every request a hop to the thread pool
        async def check_token(request: Request, _shown_in_the_docs: Annotated[Any, Security(bearer)]) -> None:
            required.check(request.headers.get("authorization"))

        return check_token

    async def open_to_all() -> None:
        """Reads on loopback need no token."""

    read_token = TokenRequired(settings.token, "reading") if settings.reads_need_token else None
    write_token = TokenRequired(settings.token, "changing the index")
    reader = token_check(read_token) if read_token else open_to_all
    writer = token_check(write_token)
    tokens_required = {writer: write_token} | ({reader: read_token} if read_token else {})

    class SearchBody(BaseModel):
        query: str | list[str] = Field(description=f"one query, or up to {MAX_BATCH_QUERIES} of them")
        k: int = Field(10, ge=1, le=MAX_K, description="results per query")
        nprobe: int = Field(0, ge=0, description="inverted lists to visit; 0: the index's calibrated default")
        mode: str | None = Field(None, description="hybrid, dense or lexical; default: the index's")
        filter: dict[str, Any] | str | None = Field(
            None, description='metadata conditions, e.g. {"year": {"gte": 2010}}'
        )
        explain: bool = Field(False, description="explain each result: the tokens with the largest shares of its score")
        fusion: str | None = Field(None, description="how hybrid fuses: rrf or convex; default: the index's")
        dense_weight: float | None = Field(None, description="the towers' weight in the convex fusion, 0 to 1")
        prior_weight: float | None = Field(None, description="the weight of the index's document prior; 0 turns it off")
        boosts: list[str | list[Any]] | None = Field(
            None, description='replace the index\'s boosts, e.g. ["kind=function:0.1"]; [] turns them off'
        )
        partial: bool = Field(False, description=PARTIAL_HELP)

    def searching(request: SearchRequest) -> JSONResponse:
        # a JSONResponse goes out as it is: a dict would be validated and re-encoded by FastAPI first
        with live.lease() as searcher:
            return JSONResponse(search_response(searcher, request))

    @app.get("/search", dependencies=[Depends(reader)], response_class=JSONResponse)
    def search_get(
        q: Annotated[str, Query(description="the query")],
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        nprobe: Annotated[int, Query(ge=0)] = 0,
        mode: str | None = None,
        filter: Annotated[str | None, Query(description="conditions as the CLI's --filter, ';'-separated")] = None,
        explain: bool = False,
        fusion: str | None = None,
        dense_weight: float | None = None,
        prior_weight: float | None = None,
        boost: Annotated[list[str] | None, Query(description="FIELD=VALUE:W, repeated; replaces the index's")] = None,
        partial: Annotated[bool, Query(description=PARTIAL_HELP)] = False,
    ) -> JSONResponse:
        """Search with one query."""
        return searching(
            SearchRequest.checked(
                q, k, nprobe, mode, filter, explain, fusion, dense_weight, prior_weight, boost, partial=partial
            )  # fmt: skip
        )

    @app.post("/search", dependencies=[Depends(reader)], response_class=JSONResponse)
    def search_post(body: SearchBody) -> JSONResponse:
        """Search with one query or a list of them (encoded together)."""
        return searching(
            SearchRequest.checked(
                body.query,
                body.k,
                body.nprobe,
                body.mode,
                body.filter,
                body.explain,
                body.fusion,
                body.dense_weight,
                body.prior_weight,
                body.boosts,
                partial=body.partial,
            )
        )

    @app.get("/documents/{doc_id:document_id}", dependencies=[Depends(reader)])
    def get_document(doc_id: str) -> dict:
        """A stored document: id, title, text, metadata."""
        with live.lease() as searcher:
            stored = searcher.document(doc_id)
        if stored is None:
            raise ServiceError(404, "unknown_document", f"no document with id {doc_id!r}")
        return {"id": stored.doc_id, "title": stored.title, "text": stored.text, "metadata": stored.metadata}

    @app.post(
        "/documents",
        dependencies=[Depends(writer)],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def post_documents(
        request: Request, wait: Annotated[bool, Query(description=WAIT_HELP)] = False
    ) -> JSONResponse:
        """Add documents, replacing any with the same id (JSON list of records, or JSON lines): 202 once
        logged, 200 once searchable (with ``wait``)."""
        # parsed in the pool: 16 MiB of records on the event loop stalled every request, /health too
        documents = await run_in_threadpool(parse_documents, await request.body())
        return await writing(lambda: _written(writes.add(documents, wait)))

    @app.delete("/documents/{doc_id:document_id}", dependencies=[Depends(writer)])
    async def delete_document(doc_id: str, wait: Annotated[bool, Query(description=WAIT_HELP)] = False) -> JSONResponse:
        """Remove one document (404 when neither the served version nor the logged writes hold it)."""
        return await writing(lambda: _written(writes.delete(doc_id, wait)))

    def _written(acknowledged) -> JSONResponse:
        # logged and fsynced either way: 200 once a served version holds it, 202 before
        return JSONResponse(acknowledged.record(), 200 if acknowledged.searchable else 202)

    @app.get("/health")
    def health() -> dict:
        """200 with the served version; 503 while no index is available."""
        with live.lease() as searcher:
            return {"status": "ok", "version": searcher.version_name, "documents": len(searcher)}

    @app.get("/stats", dependencies=[Depends(reader)])
    def get_stats() -> dict:  # in the pool: a sharded index's lease may wait for its shards
        """The served index (documents, version, towers, FAISS index), the requests answered and how many
        run at once (``worker_threads``)."""
        served: dict[str, Any] = {"available": live.available, "swaps": live.swaps, "problem": live.problem}
        if hasattr(live.encoder, "batches"):  # micro-batching: forward passes and the queries they encoded
            served["query_batches"] = {"batches": live.encoder.batches, "queries": live.encoder.queries}
        if live.available:
            with live.lease() as searcher:
                manifest = searcher.manifest
                served |= {
                    "directory": str(live.index_dir),
                    "version": searcher.version_name,
                    "documents": len(searcher),
                    "passages": searcher.passage_count,
                    "towers": {
                        "model": manifest.model,
                        "query_sha256": manifest.query_weights_sha256,
                        "document_sha256": manifest.document_weights_sha256,
                        "dimension": manifest.dimension,
                    },
                    "faiss": {"factory": manifest.factory, "nlist": manifest.nlist, "nprobe": manifest.default_nprobe},
                    "search": asdict(searcher.settings),
                }
        # the lifespan set the pool to this size
        return {
            "index": served,
            "writes": writes.snapshot(),
            "worker_threads": settings.worker_threads,
        } | stats.snapshot()

    async def service_error(request: Request, error: Exception) -> JSONResponse:
        known = classify(error)
        return JSONResponse(error_body(known.status, known.code, known.message), known.status, known.headers)

    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'][1:]) or 'body'}: {problem['msg']}"
            for problem in error.errors()[:5]
        )
        return JSONResponse(error_body(400, "invalid_input", problems), 400)

    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(error_body(error.status_code, code, str(error.detail)), error.status_code, error.headers)

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    for known in (ServiceError, DualsearchError):  # answered here, not re-raised to the server's log
        app.add_exception_handler(known, service_error)
    add_docs_routes(app, [Depends(reader)])

    def token_required(scope) -> TokenRequired | None:
        """The token the route that will answer ``scope`` needs, as its dependencies say."""
        for route in app.router.routes:
            if route.matches(scope)[0] is Match.FULL:
                checks = (depends.dependency for depends in getattr(route, "dependencies", ()))
                return next((tokens_required[check] for check in checks if check in tokens_required), None)
        return None

    # Each middleware added wraps those added before it. A request meets them in the reverse order: it is
    # counted, a foreign Host is refused before anything else, a missing token before the body is read,
    # and a body is bounded as the route reads it.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, seconds=settings.body_seconds)
    app.add_middleware(TokenGate, required=token_required)
    if settings.check_host:
        app.add_middleware(LoopbackHostOnly)
    app.add_middleware(_Measured, stats=stats)
    app.state.live, app.state.stats, app.state.writes = live, stats, writes
    return app


def _document_id_convertor():
    """The path parameter of ``/documents/{id}``: any text, as a document id is any non-blank text
    (:func:`dualsearch.corpora.text.text_problem`). Starlette's ``path`` stops at a newline (its regex is
    ``.*``), so an id holding one could be added but never fetched or deleted."""
    from starlette.convertors import PathConvertor

    class DocumentIdConvertor(PathConvertor):
        regex = "(?s:.*)"  # "." matches a newline too

    return DocumentIdConvertor()


class _Measured:
    """ASGI middleware: count each request by route template and status, and time it; every
    response also says ``X-Content-Type-Options: nosniff`` (JSON is never sniffed into HTML).

    A fault of ours becomes a JSON 500 here, logged with its traceback: Starlette's own handler
    would re-raise it and drop the client's connection.
    """

    def __init__(self, app, stats: RequestStats) -> None:
        self.app, self.stats = app, stats

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, started_response = time.perf_counter(), 500, False

        async def measured_send(message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-content-type-options", b"nosniff")]
            await send(message)

        try:
            await self.app(scope, receive, measured_send)
        except Exception as error:
            if started_response:
                raise
            from starlette.responses import JSONResponse

            known = classify(error)
            await JSONResponse(error_body(known.status, known.code, known.message), known.status)(
                scope, receive, measured_send
            )
        finally:
            route = scope.get("route")
            name = f"{scope['method']} {route.path if route is not None else 'unmatched'}"
            self.stats.record(name, status, time.perf_counter() - started)
