"""A sharded index served on Ray Serve: ``dualsearch serve DIR --ray``.

One Serve deployment per shard (:class:`ShardReplica`, ``--replicas`` replicas each) and an ingress
deployment that answers the same HTTP API as ``dualsearch serve`` (:func:`dualsearch.service.app.create_app`):
it encodes each query once, runs the three rounds of a sharded search (:mod:`dualsearch.read.shard`)
against every shard at once, and merges (:class:`~dualsearch.read.sharded.ShardedSearcher`). Serve
routes each round to a healthy replica, restarts replicas that die, and retries a request a dead
replica dropped.

- **Versions.** Each replica follows its shard's live version on every request, as a server does.
  It keeps the last few versions open, because a later round of a search asks for the version the
  first round read. A round that finds that version gone makes the search run again.
- **Writes** go to the replicas of the shard that owns the id. Each write is that shard's transaction
  (:mod:`dualsearch.write.reindex`), published before it is answered (200, searchable), so it is
  durable once answered. There is no write-ahead log through ``--ray``: a write waits for its
  shard's lock and publish, where a single server answers 202 once its log holds the write.
- **Where files live.** Every node that runs a replica or the ingress reads the index at the same
  path (a shared filesystem, or the same copy on each node), as Ray encoding reads the towers.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dualsearch.corpora.document import Document
from dualsearch.errors import IndexLockedError, InvalidInputError, UnknownDocumentError
from dualsearch.index import layout
from dualsearch.index.shards import ShardMap, shard_of
from dualsearch.read.shard import ShardSearcher, StaleVersionError
from dualsearch.read.sharded import Pending, ShardedSearcher
from dualsearch.service.writes import Acknowledged

logger = logging.getLogger(__name__)
KEEP_VERSIONS = 3  # versions a replica keeps open for the later rounds of searches that began on them
LOCK_WAIT_SECONDS = 60.0  # a write waits this long for its shard's lock (another replica's write)
REPLICA_RETRIES = 3  # a read sent again when the replica it went to died before answering
DESCRIBE_SECONDS = 1.0  # the longest the ingress shows a shard's document count from before
REPLICA_CPUS = 0.1  # Serve's default of 1 CPU a replica would not fit a 2-shard, 2-replica index on 2 cores


class ShardReplica:
    """One replica of one shard: its searcher, following the live version."""

    def __init__(self, shard_dir: str, number: int) -> None:
        self.shard_dir, self.number = Path(shard_dir), number
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
                encoder = held.encoder if held is not None else None
                searcher = ShardSearcher.open(self.shard_dir, encoder=encoder, previous=held)
                searcher.shard_number = self.number
                self._open[searcher.version_name], self._pointer = searcher, pointer
                while len(self._open) > KEEP_VERSIONS:
                    self._open.popitem(last=False)[1].close()
            return next(reversed(self._open.values()))

    def _at(self, version: str) -> ShardSearcher:
        self._current()
        searcher = self._open.get(version)
        if searcher is None:
            raise StaleVersionError(f"{self.shard_dir}: version {version} is no longer open here")
        return searcher

    # the rounds of a sharded search (dualsearch.read.shard)
    def statistics(self, queries, settings, filter):
        return self._current().statistics(queries, settings, filter)

    def candidates(self, vectors, queries, depth, passage_depth, nprobe, exact, settings, filter, corpus, version):
        searcher = self._at(version)
        return searcher.candidates(
            vectors, queries, depth, passage_depth, nprobe, exact, settings, filter, corpus, version
        )

    def results(self, ranked, settings, largest, version):
        return self._at(version).results(ranked, settings, largest, version)

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

    def present(self, doc_ids: Sequence[str]) -> set[str]:
        return set(self._current().store.lookup(doc_ids))

    # writes, each this shard's transaction
    def add(self, documents: list[Document]) -> tuple[int, int, str]:
        from dualsearch.write.reindex import add_documents

        report = self._write(lambda encoder: add_documents(self.shard_dir, documents, encoder))
        return report.added, report.updated, self._current().version_name

    def delete(self, doc_ids: list[str]) -> tuple[int, str]:
        from dualsearch.write.reindex import delete_documents

        report = self._write(lambda encoder: delete_documents(self.shard_dir, doc_ids, encoder))
        return report.deleted, self._current().version_name

    def _write(self, write):
        """``write(encoder)``, waiting while another replica of this shard holds its lock."""
        encoder, deadline = self._current().encoder, time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                return write(encoder)
            except IndexLockedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def reading(handle, method: str, *args) -> Pending:
    """Start ``method`` on one of a deployment's replicas now; waiting for it sends it again, to another
    replica, when the one it went to died before answering (reads only: they change nothing)."""
    from ray.exceptions import ActorUnavailableError, RayActorError

    response = [getattr(handle, method).remote(*args)]

    def wait():
        for _ in range(REPLICA_RETRIES):
            try:
                return response[0].result()
            except (RayActorError, ActorUnavailableError) as error:
                logger.warning("a replica died during %s (%s); asking another", method, type(error).__name__)
                response[0] = getattr(handle, method).remote(*args)
        return response[0].result()

    return Pending(wait)


class RemoteShard:
    """A shard's deployment, seen by the ingress as a shard searcher whose answers come later
    (:class:`~dualsearch.read.sharded.Pending`)."""

    def __init__(self, handle, number: int, description: dict) -> None:
        self.handle, self.shard_number = handle, number
        self.manifest, self.settings = description["manifest"], description["settings"]
        self.version_name, self.documents = description["version"], description["documents"]
        self.encoder = None  # the ingress encodes; shards never do

    def _call(self, method: str, *args) -> Pending:
        return reading(self.handle, method, *args)

    def statistics(self, *args) -> Pending:
        return self._call("statistics", *args)

    def candidates(self, *args) -> Pending:
        return self._call("candidates", *args)

    def results(self, *args) -> Pending:
        return self._call("results", *args)

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

    def __init__(self, index_dir: Path, handles: list, encoder) -> None:
        self.index_dir, self.handles, self.encoder = Path(index_dir), handles, encoder
        self.shard_map = ShardMap.read(index_dir)
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
                descriptions = [reading(handle, "describe") for handle in self.handles]
                shards = [RemoteShard(h, n, d.result()) for n, (h, d) in enumerate(zip(self.handles, descriptions))]
                searcher = ShardedSearcher(self.index_dir, self.shard_map, shards)
                searcher.encoder = self.encoder
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
    """The writes of the ingress: each routed to the deployment of the shard that owns the id."""

    def __init__(self, live: ShardsLive) -> None:
        self.live = live
        self.written = 0

    def start(self) -> ShardWrites:
        return self

    def close(self) -> None:
        """Nothing pending: every write was published before it was answered."""

    def add(self, documents: list[Document], wait: bool = False) -> Acknowledged:
        if not documents:
            raise InvalidInputError("no documents in the body: send a JSON list of records or JSON lines")
        count = self.live.shard_map.count
        routed = {n: [d for d in documents if shard_of(d.id, count) == n] for n in range(count)}
        started = {n: self.live.handles[n].add.remote(docs) for n, docs in routed.items() if docs}
        added = updated = 0
        for response in started.values():
            shard_added, shard_updated, _ = response.result()
            added, updated = added + shard_added, updated + shard_updated
        self.written += 1
        self.live.forget()
        return Acknowledged(0, added=added, updated=updated, searchable=True, version=self._versions())

    def delete(self, doc_id: str, wait: bool = False) -> Acknowledged:
        handle = self.live.handles[shard_of(doc_id, self.live.shard_map.count)]
        if doc_id not in handle.present.remote([doc_id]).result():
            raise UnknownDocumentError(f"no document with id {doc_id!r}")
        deleted, _ = handle.delete.remote([doc_id]).result()
        self.written += 1
        self.live.forget()
        return Acknowledged(0, deleted=deleted, searchable=True, version=self._versions())

    def _versions(self) -> str:
        return "+".join(reading(handle, "describe").result()["version"] for handle in self.live.handles)

    def snapshot(self) -> dict:
        return {"pending": 0, "written": self.written, "log": None}


APP_NAME = "dualsearch"


def build_application(index_dir: str | Path, replicas: int, settings: Any) -> Any:
    """The Serve application: a deployment per shard, and the ingress (the HTTP API) bound to them."""
    from ray import serve

    index_dir = Path(index_dir).absolute()
    shard_map = ShardMap.read(index_dir)
    options = {"num_replicas": replicas, "ray_actor_options": {"num_cpus": REPLICA_CPUS}}
    shards = [
        serve.deployment(ShardReplica, name=shard_deployment(number), **options).bind(str(directory), number)
        for number, directory in enumerate(shard_map.shard_dirs(index_dir))
    ]

    def app_builder():  # runs in the ingress replica: the handles exist once the application is deployed
        from dualsearch.index.manifest import Manifest
        from dualsearch.index.query_tower import index_encoder
        from dualsearch.service.app import create_app

        handles = [serve.get_deployment_handle(shard_deployment(n), app_name=APP_NAME) for n in range(len(shards))]
        first = shard_map.shard_dirs(index_dir)[0]  # every shard holds the same towers
        encoder = index_encoder(first, Manifest.read(layout.current_version_dir(first)))
        live = ShardsLive(index_dir, handles, encoder)
        return create_app(live, settings, writes=ShardWrites(live))

    class Ingress:
        """The HTTP API; the shards' deployments are bound to it so that one application holds them all."""

        def __init__(self, *shard_handles) -> None:
            self.shard_handles = shard_handles

    ingress = serve.deployment(serve.ingress(app_builder)(Ingress), name="ingress",
                               ray_actor_options={"num_cpus": REPLICA_CPUS})  # fmt: skip
    return ingress.bind(*shards)


def shard_deployment(number: int) -> str:
    return f"shard-{number:03d}"


def serve_on_ray(index_dir: str | Path, host: str, port: int, settings: Any, replicas: int, address: str | None) -> str:
    """Deploy the application on the Ray cluster at ``address`` (None: a new local one) and return
    the URL it answers on; :func:`stop_serving` takes it down."""
    import ray
    from ray import serve

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, logging_level="WARNING")
    if port == 0:  # Serve's proxy takes a fixed port: choose a free one
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_application(index_dir, replicas, settings), name=APP_NAME, route_prefix="/")
    return f"http://{host}:{port}"


def stop_serving() -> None:
    from ray import serve

    serve.delete(APP_NAME)
