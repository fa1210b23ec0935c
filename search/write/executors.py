"""Where the document tower runs while a version is written: in this process, or on a pool of Ray actors.

The writer (:class:`dualsearch.write.version_writer.VersionWriter`) stays in charge of everything else (which
documents need encoding, checkpoints, the store, the vectors file, the FAISS index, publishing), so
every guarantee of a local build holds on Ray too: only the encoding of chunks is handed out, and the
encoded chunks come back, in order, to the writer's checkpoint cache.

**Why actors, not Ray Data.** The driver must receive encoded chunks in corpus order, with a bounded
number in flight, and checkpoint each as it arrives; a pool of actors that load the towers once and a
window of submitted chunks is exactly that. Ray Data's ``map_batches`` would bring pyarrow and a
second scheduler for the same result, and its outputs would still have to be put back in order.

**How the towers reach the workers: by path.** Each actor loads the towers from the directory the
driver loaded them from (ONNX towers: the exported directory; PyTorch: the model path or hub id), so
on a cluster that path must be on shared storage (or the same on every node). Each actor checks that
its towers hash to the driver's before encoding anything, so a node with other files at that path is
refused, not silently mixed in. Towers of another kind (a test's fake encoder) are sent pickled
through Ray's object store, which only makes sense on a local cluster.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

import numpy as np

from dualsearch.errors import IndexBuildError, InvalidInputError
from dualsearch.towers.contract import Encoder
from dualsearch.towers.exported import THREADS_VARIABLE

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
Item = TypeVar("Item")
TextsOf = Callable[[Any], list[str]]


class Executor(Protocol):
    """Runs the document tower over a stream of items for a version writer."""

    def encode(self, items: Iterable[Item], texts_of: TextsOf) -> Iterator[tuple[Item, np.ndarray]]:
        """Each item with the document vectors (p, d) of ``texts_of(item)``, in the items' order."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """Encodes each item in this process, one after the other (the default).

    Example:
        >>> from dualsearch.testing import FakeEncoder
        >>> executor = LocalExecutor(FakeEncoder(dimension=4))
        >>> [(item, vectors.shape) for item, vectors in executor.encode([["a", "b"], []], list)]
        [(['a', 'b'], (2, 4)), ([], (0, 4))]
    """

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder

    def encode(self, items: Iterable[Item], texts_of: TextsOf) -> Iterator[tuple[Item, np.ndarray]]:
        """Each item with the document vectors (p, d) of ``texts_of(item)``, in the items' order."""
        for item in items:
            texts = texts_of(item)
            yield item, self.encoder.encode_documents(texts) if texts else _no_vectors(self.encoder)

    def close(self) -> None:
        pass


class RayExecutor:
    """Encodes items on ``workers`` Ray actors (``threads`` CPUs each), at most ``2 * workers`` in flight.

    Nothing starts until the first chunk needs encoding (a corpus that fails validation, or needs no
    encoding, never touches Ray). Then it connects to the cluster at ``address`` (None: ``RAY_ADDRESS``,
    or a new local cluster) unless Ray is already initialised in this process. An actor that dies is
    restarted by Ray, which loads the towers again and retries the chunk it was encoding.
    """

    def __init__(
        self, encoder: Encoder, workers: int | None = None, threads: int = 1, address: str | None = None
    ) -> None:
        import_ray()  # fail now, before any work, if the extra is missing
        if threads < 1 or (workers is not None and workers < 1):
            raise InvalidInputError(f"workers and threads must be at least 1, got {workers} and {threads}")
        self.encoder, self.workers, self.threads, self.address = encoder, workers, threads, address
        self._pool = None
        self._actors: list = []
        self._started_ray = False

    def encode(self, items: Iterable[Item], texts_of: TextsOf) -> Iterator[tuple[Item, np.ndarray]]:
        """Each item with the document vectors (p, d) of ``texts_of(item)``, in the items' order."""
        queue: collections.deque[tuple[Item, bool]] = collections.deque()  # (item, sent to a worker)
        in_flight = 0
        for item in items:
            texts = texts_of(item)
            if texts:
                self._workers().submit(lambda worker, batch: worker.encode.remote(batch), texts)
                in_flight += 1
            queue.append((item, bool(texts)))
            while queue and (in_flight >= self.window or not queue[0][1]):
                finished, in_flight = self._next(queue, in_flight)
                yield finished
        while queue:
            finished, in_flight = self._next(queue, in_flight)
            yield finished

    def start(self) -> None:
        """Start the actors now (they are otherwise started by the first chunk that needs encoding)."""
        self._workers()

    @property
    def window(self) -> int:
        return 2 * len(self._actors)

    def _next(self, queue, in_flight: int) -> tuple[tuple[Any, np.ndarray], int]:
        item, sent = queue.popleft()
        if not sent:
            return (item, _no_vectors(self.encoder)), in_flight
        return (item, self._pool.get_next()), in_flight - 1  # the pool returns results in submission order

    def _workers(self):
        """The actor pool, started on first use."""
        if self._pool is not None:
            return self._pool
        ray = import_ray()
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING)
            self._started_ray = True
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // self.threads)
        actor = ray.remote(num_cpus=self.threads, max_restarts=-1, max_task_retries=-1)(TowerWorker)
        load = towers_loader(self.encoder)
        self._actors = [actor.remote(load, self.threads) for _ in range(workers)]
        expected = self.encoder.identity().document_key()
        for identity in ray.get([a.identity.remote() for a in self._actors]):
            found = identity.document_key()
            if found != expected:
                raise IndexBuildError(
                    f"a Ray worker loaded other towers than this process (document tower {found[:12]}, against "
                    f"{expected[:12]}): on a cluster the model directory must hold the same towers on every node"
                )
        self._pool = ray.util.ActorPool(self._actors)
        logger.info("encoding on %d Ray workers with %d thread(s) each", workers, self.threads)
        return self._pool

    def close(self) -> None:
        if not (self._actors or self._started_ray):
            return
        ray = import_ray()
        for actor in self._actors:
            ray.kill(actor)
        self._actors, self._pool = [], None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


class TowerWorker:
    """A Ray actor's state: the towers, loaded once, with ``threads`` intra-op threads."""

    def __init__(self, load: Callable[[], Encoder], threads: int) -> None:
        os.environ[THREADS_VARIABLE] = str(threads)  # read when ONNX Runtime sessions are made
        self.encoder = load()
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)

    def identity(self):
        return self.encoder.identity()

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode_documents(texts)


def towers_loader(encoder: Encoder) -> Callable[[], Encoder]:
    """How a worker loads the same document tower: from the exported or model directory, or (other
    encoders) a copy of ``encoder`` itself."""
    from dualsearch.towers.exported import OnnxEncoder

    if hasattr(encoder, "loaded_encoder"):  # the CLI's stand-in that loads on first use
        encoder = encoder.loaded_encoder()
    if isinstance(encoder, OnnxEncoder) and encoder.document_tower is None:  # an index's light query path
        encoder = encoder.documents_encoder()
    if isinstance(encoder, OnnxEncoder) and encoder.directory is not None:
        return functools.partial(
            OnnxEncoder.load, str(encoder.directory), batch_size=encoder.batch_size, model_name=encoder.model_name
        )
    if type(encoder).__name__ == "DualEncoder":  # not imported here: that would import torch
        return functools.partial(type(encoder).load, encoder.model_name, batch_size=encoder.batch_size)
    return functools.partial(_same, encoder)


def make_executor(
    name: str, encoder: Encoder, workers: int | None = None, threads: int = 1, address: str | None = None
) -> LocalExecutor | RayExecutor:
    """The executor called ``name`` (``local`` or ``ray``)."""
    if name == "local":
        return LocalExecutor(encoder)
    if name == "ray":
        return RayExecutor(encoder, workers, threads, address)
    raise InvalidInputError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")


def import_ray():
    try:
        import ray
        import ray.util
    except ImportError:
        raise InvalidInputError("encoding on Ray needs the ray package: pip install 'dualsearch[ray]'") from None
    return ray


def _same(encoder: Encoder) -> Encoder:
    return encoder


def _no_vectors(encoder: Encoder) -> np.ndarray:
    return np.zeros((0, encoder.dimension), np.float32)
