"""Encode concurrent queries together: :class:`BatchingEncoder`.

A server answers each request in its own thread. Left alone, every thread runs its own forward pass
of the query tower, and on a small CPU those passes stall each other (each wants every core). The
batching encoder hands every query to one encoding thread instead, which takes all the queries
waiting when it becomes free and encodes them in one forward pass. A query that arrives alone is
encoded at once (no added latency at low load); under load, the queue fills while a batch is being
encoded, so batches grow with the load. ``wait_ms`` optionally waits a little longer for more
queries once a second one is already queued.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

import numpy as np

from dualsearch.protocols import Encoder, check_texts

logger = logging.getLogger(__name__)
MAX_BATCH = 64  # queries per forward pass: beyond this a batch costs as much per query as two batches
WAIT_MS = 1.0


class BatchingEncoder:
    """``encoder`` with :meth:`encode_queries` batched across threads; everything else delegates.

    Example:
        >>> from dualsearch.testing import FakeEncoder
        >>> with BatchingEncoder(FakeEncoder()) as encoder:
        ...     encoder.encode_queries(["green tea"]).shape
        (1, 256)
    """

    def __init__(self, encoder: Encoder, max_batch: int = MAX_BATCH, wait_ms: float = WAIT_MS) -> None:
        self.encoder, self.max_batch, self.wait = encoder, max_batch, wait_ms / 1000
        self.batches = self.queries = 0  # counters, for stats and tests
        self._pending: queue.SimpleQueue[tuple[list[str], Future] | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._run, name="dualsearch-query-batches", daemon=True)
        self._worker.start()

    def __getattr__(self, name: str):
        return getattr(self.encoder, name)

    def __enter__(self) -> BatchingEncoder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def encode_queries(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """(n, d) unit vectors, encoded in a forward pass shared with other threads' queries."""
        texts = check_texts(texts, "query")
        if not texts or len(texts) >= self.max_batch:  # a batch of its own already
            return self.encoder.encode_queries(texts, show_progress=show_progress)
        future: Future = Future()
        self._pending.put((texts, future))
        return future.result()

    def _run(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                return
            batch, size = [first], len(first[0])
            deadline = None
            while size < self.max_batch:
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    if len(batch) < 2 or self.wait <= 0:  # alone: go now
                        break
                    deadline = deadline or time.monotonic() + self.wait
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = self._pending.get(timeout=remaining)
                    except queue.Empty:
                        break
                if item is None:
                    self._pending.put(None)  # close() after this batch
                    break
                batch.append(item)
                size += len(item[0])
            self._encode(batch)

    def _encode(self, batch: list[tuple[list[str], Future]]) -> None:
        texts = [text for texts, _ in batch for text in texts]
        try:
            vectors = self.encoder.encode_queries(texts)  # (sum of n, d)
        except Exception as error:  # every waiting request gets the error, and the worker lives on
            for _, future in batch:
                future.set_exception(error)
            return
        self.batches, self.queries = self.batches + 1, self.queries + len(texts)
        start = 0
        for texts_of_one, future in batch:
            future.set_result(vectors[start : start + len(texts_of_one)])
            start += len(texts_of_one)

    def close(self) -> None:
        """Stop the encoding thread once the queries already queued are answered."""
        if self._worker.is_alive():
            self._pending.put(None)
            self._worker.join(timeout=10)
