"""A sharded index served on Ray Serve: ``dualsearch serve DIR --ray``.

One Serve deployment per shard (:class:`ShardReplica`, ``--replicas`` replicas each) and an ingress
deployment that answers the same HTTP API as ``dualsearch serve`` (:func:`dualsearch.service.app.create_app`):
it encodes each query once, runs the rounds of a sharded search (:mod:`dualsearch.read.shard`)
against every shard at once, and merges (:class:`~dualsearch.read.sharded.ShardedSearcher`). Serve
routes each round to a healthy replica and restarts replicas that die; the ingress sends a read a
dead replica dropped again, and answers 503 naming a shard that stays silent (:class:`ShardClient`).

- **Rounds.** The ingress answers the statistics round itself when what a shard told it of its
  version covers the search (:mod:`dualsearch.read.statistics_cache`), and the shards send the
  stored documents of their best candidates with them (``prefetch``), so most searches take one
  round trip to the shards: the candidates.

- **Versions.** Each replica follows its shard's live version on every request, as a server does.
  It keeps the last few versions open, because a later round of a search asks for the version the
  first round read. A round that finds that version gone makes the search run again.
- **Writes** go to the writer of the shard that owns the id (:class:`ShardWriter`: one replica, which
  owns the shard's write-ahead log, as one server owns its index's): answered 202 once logged and
  fsynced, searchable at the shard's next refresh (``refresh_seconds``), or 200 once searchable with
  ``wait``, exactly as ``dualsearch serve`` answers (:mod:`dualsearch.service.writes`). A write that
  spans shards is each shard's own record; its shards publish it each at its own refresh.
- **Where files live.** Every node that runs a replica or the ingress reads the index at the same
  path (a shared filesystem, or the same copy on each node), as Ray encoding reads the towers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dualsearch.corpora.document import Document
from dualsearch.defaults import SHARD_SECONDS
from dualsearch.errors import InvalidInputError, ShardUnavailableError
from dualsearch.index import layout
from dualsearch.index.shards import ShardMap, shard_name, shard_of
from dualsearch.read.shard import ShardSearcher, ShardStatistics, StaleVersionError
from dualsearch.read.sharded import Pending, ShardedSearcher
from dualsearch.read.statistics_cache import StatisticsCache
from dualsearch.requests.search import MAX_K
from dualsearch.service.writes import WAIT_SECONDS, Acknowledged

logger = logging.getLogger(__name__)
KEEP_VERSIONS = 3  # versions a replica keeps open for the later rounds of searches that began on them
REPLICA_RETRIES = 3  # a read sent again when the replica it went to died before answering
DESCRIBE_SECONDS = 1.0  # the longest the ingress shows a shard's document count from before
REPLICA_CPUS = 0.1  # Serve's default of 1 CPU a replica would not fit a 2-shard, 2-replica index on 2 cores


class ShardReplica:
    """One replica of one shard: its searcher, following the live version."""

    def __init__(self, shard_dir: str, number: int, encoder=None) -> None:
        """``encoder``: the towers, when not the ones the shard's manifest names (tests' fake towers)."""
        self.shard_dir, self.number, self._encoder = Path(shard_dir), number, encoder
        self._open: OrderedDict[str, ShardSearcher] = OrderedDict()
        self._pointer: str | None = None
        self._lock = threading.Lock()
        self._current()

    def _current(self) -> ShardSearcher:
        """The live version's searcher, opened when the shard has published a new one."""
        pointer = (self.shard_dir / layout.CURRENT_NAME).read_text(encoding="utf-8")
        with self._lock:
            if pointer != self._pointer:
                held = next(reversed(self._open.values()), None)
                encoder = held.encoder if held is not None else self._encoder
                searcher = ShardSearcher.open(self.shard_dir, encoder=encoder, previous=held)
                searcher.shard_number = self.number
                self._open[searcher.version_name], self._pointer = searcher, pointer
                while len(self._open) > KEEP_VERSIONS:
                    self._open.popitem(last=False)[1].close()
            return next(reversed(self._open.values()))

    def _at(self, version: str, live: ShardSearcher | None = None) -> ShardSearcher:
        """The searcher of ``version`` (``live``: the live one, when the caller has it)."""
        live = self._current() if live is None else live  # (not `or`: a searcher's truth is its length)
        searcher = live if live.version_name == version else self._open.get(version)
        if searcher is None:
            raise StaleVersionError(f"{self.shard_dir}: version {version} is no longer open here")
        return searcher

    # the rounds of a sharded search (dualsearch.read.shard)
    def statistics(self, queries, settings, filter):
        return self._current().statistics(queries, settings, filter)

    def candidates(
        self, vectors, queries, depth, passage_depth, nprobe, exact, settings, filter, corpus, version, prefetch
    ):
        """The shard's candidates at ``version``, and the shard's live version now: the ingress learns
        from it that the shard published, without waiting to describe it again."""
        live = self._current()
        searcher = self._at(version, live)
        answers = searcher.candidates(
            vectors, queries, depth, passage_depth, nprobe, exact, settings, filter, corpus, version, prefetch
        )
        return answers, live.version_name

    def stored_hits(self, rows, settings, largest, version):
        return self._at(version).stored_hits(rows, settings, largest, version)

    def document(self, doc_id: str):
        return self._current().document(doc_id)

    def lexical_statistics(self, query: str):
        return self._current().lexical_statistics(query)

    def term_shares(self, query: str, doc_ids: Sequence[str], corpus):
        return self._current().term_shares(query, doc_ids, corpus)

    def describe(self) -> dict:
        """What the ingress shows and checks: the manifest, the settings, the documents, the version."""
        searcher = self._current()
        return {"manifest": searcher.manifest, "settings": searcher.settings, "documents": len(searcher),
                "version": searcher.version_name}  # fmt: skip


class ShardWriter:
    """The writes of one shard, in its write-ahead log (:class:`~dualsearch.service.writes.ServiceWrites`):
    a deployment of one replica, since a log has one owner. Serve starts it again if it dies, and it
    then applies what the log holds first, so a write acknowledged is never lost."""

    def __init__(self, shard_dir: str, refresh_seconds: float, encoder=None) -> None:
        """``encoder``: the towers, when not the ones the shard's manifest names (tests' fake towers)."""
        from dualsearch.index.query_tower import index_encoder
        from dualsearch.read.live_index import LiveIndex
        from dualsearch.service.writes import ServiceWrites

        def towers(manifest):
            return encoder or index_encoder(shard_dir, manifest, fallback_backend="torch")

        self.live = LiveIndex(shard_dir, towers)
        self.writes = ServiceWrites(self.live, refresh_seconds).start()

    # in a thread: a write waits for the log's turn, and with ``wait`` for a refresh; the replica's event
    # loop keeps answering meanwhile
    async def add(self, documents: list[Document], wait: bool) -> Acknowledged:
        return await asyncio.to_thread(self.writes.add, documents, wait)

    async def delete(self, doc_id: str, wait: bool) -> Acknowledged:
        return await asyncio.to_thread(self.writes.delete, doc_id, wait)

    def snapshot(self) -> dict:
        return self.writes.snapshot()

    def __del__(self) -> None:  # Serve's replica going away: stop the refresher, close the log
        writes = getattr(self, "writes", None)
        if writes is not None:
            writes.close()
            self.live.close()


class ShardClient:
    """One shard's deployment as the ingress calls it. A call starts at once and its answer is waited for
    later (:class:`~dualsearch.read.sharded.Pending`), so a round asks every shard before it waits.

    A read that the replica it went to dropped by dying is sent again, to another replica (reads change
    nothing). A shard that gives no answer within ``seconds`` (its replicas are all dead, restarting,
    or failing to start) fails the search with :class:`~dualsearch.errors.ShardUnavailableError`,
    which names it (503).

    With ``loop`` (the ingress replica's event loop), the calls are made and awaited on that loop, as
    Serve asks of code inside a deployment: with Serve's throughput-optimised settings
    (:func:`serve_on_ray`) a handle's router runs on that loop, and the request thread only waits.
    """

    def __init__(self, handle, name: str, seconds: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.handle, self.name, self.seconds, self.loop = handle, name, seconds, loop

    def read(self, method: str, *args) -> Pending:
        return self._start(method, args, REPLICA_RETRIES, self.seconds)

    def write(self, method: str, *args) -> Pending:
        """A write: sent once (a writer that died may have logged it), waited for as long as a ``wait``
        write is held, and more."""
        return self._start(method, args, 0, self.seconds + WAIT_SECONDS)

    def _start(self, method: str, args: tuple, retries: int, seconds: float) -> Pending:
        if self.loop is None:
            return self._start_here(method, args, retries, seconds)
        future = asyncio.run_coroutine_threadsafe(self._asked(method, args, retries), self.loop)

        def wait():
            try:
                return future.result(timeout=seconds)
            except TimeoutError:
                future.cancel()
                raise self._unavailable(method, seconds) from None

        return Pending(wait)

    async def _asked(self, method: str, args: tuple, retries: int):
        from ray.exceptions import ActorUnavailableError, RayActorError

        for attempt in range(retries + 1):
            try:
                return await getattr(self.handle, method).remote(*args)
            except (RayActorError, ActorUnavailableError) as error:
                if attempt == retries:
                    raise
                self._replica_died(method, error)

    def _start_here(self, method: str, args: tuple, retries: int, seconds: float) -> Pending:
        """As :meth:`_start`, waiting in the calling thread (no event loop given)."""
        from ray.exceptions import ActorUnavailableError, RayActorError

        response = [getattr(self.handle, method).remote(*args)]
        deadline = time.monotonic() + seconds

        def wait():
            for attempt in range(retries + 1):
                try:
                    return response[0].result(timeout_s=max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    raise self._unavailable(method, seconds) from None
                except (RayActorError, ActorUnavailableError) as error:
                    if attempt == retries:
                        raise
                    self._replica_died(method, error)
                    response[0] = getattr(self.handle, method).remote(*args)

        return Pending(wait)

    def _replica_died(self, method: str, error: Exception) -> None:
        logger.warning("a replica of %s died during %s (%s); asking another", self.name, method, type(error).__name__)

    def _unavailable(self, method: str, seconds: float) -> ShardUnavailableError:
        return ShardUnavailableError(
            self.name, f"{self.name} gave no answer to {method} within {seconds:g} s: {deployment_state(self.name)}"
        )


def deployment_state(name: str) -> str:
    """What Serve says of deployment ``name`` (its status, and why), for an error message."""
    try:
        import ray

        if not ray.is_initialized():
            return "Ray is not running here"
        from ray import serve

        status = serve.status().applications[APP_NAME].deployments[name]
        replicas = ", ".join(f"{count} {state}" for state, count in status.replica_states.items()) or "no replica"
        reason = f"; {status.message}" if status.message else ""
        return f"Serve reports it {status.status} ({replicas}){reason}"
    except Exception as error:  # noqa: BLE001 - the message must not hide the failure it reports
        return f"Serve's status could not be read ({type(error).__name__})"


class RemoteShard:
    """A shard's deployment, seen by the ingress as a shard searcher whose answers come later
    (:class:`~dualsearch.read.sharded.Pending`). The statistics round is answered here when what
    the shard said of its version covers the search (:class:`~dualsearch.read.statistics_cache.StatisticsCache`)."""

    def __init__(
        self, client: ShardClient, number: int, description: dict, cache: StatisticsCache, published=lambda: None
    ) -> None:
        """``published``: called when a round finds that the shard published (its owner describes it again)."""
        self.client, self.shard_number, self.cache, self.published = client, number, cache, published
        self.manifest, self.settings = description["manifest"], description["settings"]
        self.version_name, self.documents = description["version"], description["documents"]
        self.encoder = None  # the ingress encodes; shards never do

    def _call(self, method: str, *args) -> Pending:
        return self.client.read(method, *args)

    def statistics(self, queries, settings, filter) -> ShardStatistics | Pending:
        known = self.cache.answer(queries, settings, filter)
        if known is not None:
            return known
        asked = self._call("statistics", queries, settings, filter)
        return Pending(lambda: self.cache.learn(queries, settings, filter, asked.result()))

    def candidates(self, *args) -> Pending:
        asked = self._call("candidates", *args)

        def wait():
            try:
                answers, newest = asked.result()
            except StaleVersionError:
                self.cache.forget()  # the version it knew is gone: the search's next try asks the shard
                self.published()
                raise
            if newest != self.cache.version:  # it published since: the next search reads the new version
                self.cache.forget()
                self.published()
            return answers

        return Pending(wait)

    def stored_hits(self, *args) -> Pending:
        return self._call("stored_hits", *args)

    def document(self, doc_id: str) -> Pending:
        return self._call("document", doc_id)

    def lexical_statistics(self, query: str) -> Pending:
        return self._call("lexical_statistics", query)

    def term_shares(self, *args) -> Pending:
        return self._call("term_shares", *args)

    def __len__(self) -> int:
        return self.documents

    def close(self) -> None:
        """Nothing to release here: the replicas hold the files."""


class ShardsLive:
    """What :func:`dualsearch.service.app.create_app` serves from: a searcher over the shards'
    deployments. Their manifests and versions are asked for again when a search finds other versions
    than it knew, after a write, and at least every :data:`DESCRIBE_SECONDS`."""

    def __init__(self, index_dir: Path, clients: list[ShardClient], encoder) -> None:
        self.index_dir, self.clients, self.encoder = Path(index_dir), clients, encoder
        self.shard_map = ShardMap.read(index_dir)
        self.caches = [StatisticsCache() for _ in clients]
        self._descriptions: dict[int, dict] = {}  # each shard's last answer to describe
        self.swaps, self.problem = 0, None
        self._searcher: ShardedSearcher | None = None
        self._described_at = 0.0
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return True

    def _current(self) -> ShardedSearcher:
        with self._lock:
            if self._searcher is None or time.monotonic() - self._described_at > DESCRIBE_SECONDS:
                asked = [client.read("describe") for client in self.clients]
                shards = []
                for number, (client, cache, answer) in enumerate(zip(self.clients, self.caches, asked)):
                    try:
                        description = answer.result()
                    except ShardUnavailableError:
                        if number not in self._descriptions:
                            raise
                        # what it said last stands: its searches fail (503), or go on without it (partial)
                        description = self._descriptions[number]
                    if cache.version not in (None, description["version"]):
                        cache.forget()  # the shard published: what was learnt of the old version is not its
                    self._descriptions[number] = description
                    shards.append(RemoteShard(client, number, description, cache, self.forget))
                searcher = ShardedSearcher(self.index_dir, self.shard_map, shards)
                searcher.encoder, searcher.prefetch = self.encoder, MAX_K
                if self._searcher is not None and searcher.versions != self._searcher.versions:
                    self.swaps += 1
                self._searcher, self._described_at = searcher, time.monotonic()
            return self._searcher

    def forget(self) -> None:
        """Ask the shards again at the next request (a write published, or a search saw new versions)."""
        with self._lock:
            self._searcher = None

    @contextlib.contextmanager
    def lease(self) -> Iterator[ShardedSearcher]:
        searcher = self._current()
        known = searcher.versions
        yield searcher
        if searcher.versions != known:
            self.forget()

    def refresh(self) -> bool:
        return False  # each replica follows its own shard

    def close(self) -> None:
        """The deployments outlive the ingress's object."""


class ShardWrites:
    """The writes of the ingress: each document to the writer of the shard that owns its id
    (:class:`ShardWriter`), answered as ``dualsearch serve`` answers: 202 once every shard it touches
    logged its part, 200 once searchable with ``wait``."""

    def __init__(self, live: ShardsLive, writers: list[ShardClient]) -> None:
        self.live, self.writers = live, writers

    def start(self) -> ShardWrites:
        return self

    def close(self) -> None:
        """The writers outlive the ingress: each refreshes its shard on its own."""

    def add(self, documents: list[Document], wait: bool = False) -> Acknowledged:
        if not documents:
            raise InvalidInputError("no documents in the body: send a JSON list of records or JSON lines")
        count = self.live.shard_map.count
        routed = {n: [d for d in documents if shard_of(d.id, count) == n] for n in range(count)}
        asked = [self.writers[n].write("add", part, wait) for n, part in routed.items() if part]
        return self._answer([answer.result() for answer in asked], wait)

    def delete(self, doc_id: str, wait: bool = False) -> Acknowledged:
        writer = self.writers[shard_of(doc_id, self.live.shard_map.count)]
        return self._answer([writer.write("delete", doc_id, wait).result()], wait)

    def _answer(self, parts: list[Acknowledged], wait: bool) -> Acknowledged:
        """One answer for the shards' parts of a write. Its ``sequence`` is 0: each shard's log numbers
        its own records."""
        searchable = all(part.searchable for part in parts)
        if searchable:
            self.live.forget()  # the shards published: the next search reads their new versions
        return Acknowledged(
            0,
            added=sum(part.added for part in parts),
            updated=sum(part.updated for part in parts),
            deleted=sum(part.deleted for part in parts),
            searchable=searchable,
            version=self._versions() if searchable else None,
        )

    def _versions(self) -> str:
        asked = [client.read("describe") for client in self.live.clients]
        return "+".join(answer.result()["version"] for answer in asked)

    def snapshot(self) -> dict:
        """For ``/stats``: each shard's log."""
        asked = {shard_name(n): writer.read("snapshot") for n, writer in enumerate(self.writers)}
        shards = {name: answer.result() for name, answer in asked.items()}
        return {"pending": sum(part["pending"] for part in shards.values()), "shards": shards}


APP_NAME = "dualsearch"
# Serve's throughput-optimised settings (gRPC between processes, a handle's router and the user's code on
# the replica's event loop), which cut the time of a round to the shards (results/ray_serving.json);
# but not its direct ingress, which would replace the proxy on the port asked for by ports of its own.
SERVE_ENVIRONMENT = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"}


def build_application(index_dir: str | Path, replicas: int, settings: Any, shard_seconds: float = SHARD_SECONDS) -> Any:
    """The Serve application: a deployment per shard, and the ingress (the HTTP API) bound to them.
    ``shard_seconds``: how long the ingress waits for a shard before it answers 503 naming it."""
    from ray import serve

    index_dir = Path(index_dir).absolute()
    shard_map = ShardMap.read(index_dir)
    options = {"num_replicas": replicas, "ray_actor_options": {"num_cpus": REPLICA_CPUS}}
    shard_dirs = shard_map.shard_dirs(index_dir)
    shards = [
        serve.deployment(ShardReplica, name=shard_deployment(number), **options).bind(str(directory), number)
        for number, directory in enumerate(shard_dirs)
    ]
    writer_options = {"num_replicas": 1, "ray_actor_options": {"num_cpus": REPLICA_CPUS}}  # a log has one owner
    writers = [
        serve.deployment(ShardWriter, name=writer_deployment(number), **writer_options).bind(
            str(directory), settings.refresh_seconds
        )
        for number, directory in enumerate(shard_dirs)
    ]

    def app_builder():  # runs in the ingress replica: the handles exist once the application is deployed
        from dualsearch.index.manifest import Manifest
        from dualsearch.index.query_tower import index_encoder
        from dualsearch.service.app import create_app

        def client(name: str) -> ShardClient:
            return ShardClient(serve.get_deployment_handle(name, app_name=APP_NAME), name, shard_seconds)

        clients = [client(shard_deployment(n)) for n in range(len(shards))]
        writer_clients = [client(writer_deployment(n)) for n in range(len(shards))]
        first = shard_dirs[0]  # every shard holds the same towers
        encoder = index_encoder(first, Manifest.read(layout.current_version_dir(first)))
        live = ShardsLive(index_dir, clients, encoder)
        app = create_app(live, settings, writes=ShardWrites(live, writer_clients))
        app.add_middleware(EventLoopFinder, clients=clients + writer_clients)
        return app

    class Ingress:
        """The HTTP API; the shards' deployments are bound to it so that one application holds them all."""

        def __init__(self, *shard_handles) -> None:
            self.shard_handles = shard_handles

    ingress = serve.deployment(serve.ingress(app_builder)(Ingress), name="ingress",
                               ray_actor_options={"num_cpus": REPLICA_CPUS})  # fmt: skip
    return ingress.bind(*shards, *writers)


class EventLoopFinder:
    """An ASGI middleware that gives the shards' clients the event loop the ingress serves requests on
    (the first request's), where their handle calls then run (:class:`ShardClient`)."""

    def __init__(self, app, clients: list[ShardClient]) -> None:
        self.app, self.clients = app, clients

    async def __call__(self, scope, receive, send) -> None:
        if self.clients[0].loop is None:
            loop = asyncio.get_running_loop()
            for client in self.clients:
                client.loop = loop
        await self.app(scope, receive, send)


def shard_deployment(number: int) -> str:
    """A shard's deployment is named as its directory: ``shard-001``."""
    return shard_name(number)


def writer_deployment(number: int) -> str:
    """The deployment of a shard's writer: ``shard-001-writer``."""
    return f"{shard_name(number)}-writer"


def serve_on_ray(
    index_dir: str | Path,
    host: str,
    port: int,
    settings: Any,
    replicas: int,
    address: str | None,
    shard_seconds: float = SHARD_SECONDS,
) -> str:
    """Deploy the application on the Ray cluster at ``address`` (None: a new local one, started with
    :data:`SERVE_ENVIRONMENT` set in this process's environment, so that every process of the cluster
    has it) and return the URL it answers on; :func:`stop_serving` takes it down."""
    import ray
    from ray import serve

    if not ray.is_initialized():
        if address is None:  # a cluster of our own: Serve's settings for latency, in every process it starts
            for name, value in SERVE_ENVIRONMENT.items():
                os.environ.setdefault(name, value)
        ray.init(address=address, include_dashboard=False, logging_level="WARNING")
    if port == 0:  # Serve's proxy takes a fixed port: choose a free one
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_application(index_dir, replicas, settings, shard_seconds), name=APP_NAME, route_prefix="/")
    return f"http://{host}:{port}"


def stop_serving() -> None:
    from ray import serve

    serve.delete(APP_NAME)
