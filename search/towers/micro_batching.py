"""Encode concurrent queries together: :class:`BatchingEncoder`.

A server answers each request in its own thread. Left alone, every thread runs its own forward pass
of the query tower, and on a small CPU those passes stall each other (each wants every core). With
the batching encoder only one pass runs at a time: a thread whose query arrives while no pass is
running encodes at once, in its own thread, together with every query already waiting (no hand-off,
so a lone query pays nothing); a thread whose query arrives during a pass waits, and the next pass,
run by one of the waiting threads, takes all the queries that queued meanwhile. Batches thus grow
with the load without a wait budget: a budget would only add latency when the server is quiet.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future

import numpy as np

from dualsearch.towers.contract import Encoder, check_texts

MAX_BATCH = 64  # queries per forward pass: beyond this a batch costs as much per query as two batches


class BatchingEncoder:
    """``encoder`` with :meth:`encode_queries` batched across threads; everything else delegates.

    Example:
        >>> from dualsearch.testing import FakeEncoder
        >>> BatchingEncoder(FakeEncoder()).encode_queries(["green tea"]).shape
        (1, 256)
    """

    def __init__(self, encoder: Encoder, max_batch: int = MAX_BATCH) -> None:
        self.encoder, self.max_batch = encoder, max_batch
        self.batches = self.queries = 0  # forward passes and the queries they encoded (stats, tests)
        self._waiting: list[tuple[list[str], Future]] = []
        self._condition = threading.Condition()
        self._encoding = False  # a pass is running

    def __getattr__(self, name: str):
        return getattr(self.encoder, name)

    def encode_queries(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """(n, d) unit vectors, encoded in a forward pass shared with other threads' queries."""
        texts = check_texts(texts, "query")
        if not texts or len(texts) >= self.max_batch:  # a batch of its own already
            return self.encoder.encode_queries(texts, show_progress=show_progress)
        future: Future = Future()
        with self._condition:
            self._waiting.append((texts, future))
        while not future.done():
            with self._condition:
                while self._encoding and not future.done():
                    self._condition.wait()
                if future.done():
                    break
                self._encoding = True  # this thread runs the next pass
                batch = self._take()
            try:
                self._encode(batch)
            finally:
                with self._condition:
                    self._encoding = False
                    self._condition.notify_all()
        return future.result()

    def _take(self) -> list[tuple[list[str], Future]]:
        """The oldest waiting queries, up to ``max_batch`` texts (at least one request)."""
        batch, size = [], 0
        while self._waiting and (not batch or size + len(self._waiting[0][0]) <= self.max_batch):
            item = self._waiting.pop(0)
            batch.append(item)
            size += len(item[0])
        return batch

    def _encode(self, batch: list[tuple[list[str], Future]]) -> None:
        texts = [text for texts, _ in batch for text in texts]
        try:
            vectors = self.encoder.encode_queries(texts)  # (sum of n, d)
        except Exception as error:  # every request of the pass gets the error
            for _, future in batch:
                future.set_exception(error)
            return
        self.batches, self.queries = self.batches + 1, self.queries + len(texts)
        start = 0
        for texts_of_one, future in batch:
            future.set_result(vectors[start : start + len(texts_of_one)])
            start += len(texts_of_one)
