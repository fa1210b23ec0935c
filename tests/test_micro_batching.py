"""BatchingEncoder (dualsearch.towers.micro_batching): concurrent queries share forward passes, same vectors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from dualsearch.testing import FakeEncoder
from dualsearch.towers.micro_batching import BatchingEncoder


class SlowEncoder(FakeEncoder):
    """A forward pass costs 20 ms whatever its size, as a small batch does on a real tower."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def encode_queries(self, texts, show_progress=False):
        self.calls.append(len(texts))
        time.sleep(0.02)
        return super().encode_queries(texts)


def run_concurrently(function, count: int) -> list:
    answers: list = [None] * count

    def one(number: int) -> None:
        answers[number] = function(number)

    threads = [threading.Thread(target=one, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_concurrent_queries_share_forward_passes_and_get_their_own_vectors():
    slow = SlowEncoder()
    encoder = BatchingEncoder(slow)
    answers = run_concurrently(lambda number: encoder.encode_queries([f"query number {number}"]), 16)
    plain = FakeEncoder()
    for number, vectors in enumerate(answers):
        np.testing.assert_array_equal(vectors, plain.encode_queries([f"query number {number}"]))
    assert sum(slow.calls) == 16 and len(slow.calls) < 16  # at least one pass encoded several queries
    assert encoder.batches == len(slow.calls) and encoder.queries == 16


def test_a_lone_query_is_encoded_in_its_own_thread_and_other_members_delegate():
    slow = SlowEncoder()
    callers = []
    slow.encode_queries = lambda texts, show_progress=False: (
        callers.append(threading.current_thread()),
        SlowEncoder.encode_queries(slow, texts),
    )[1]
    encoder = BatchingEncoder(slow)
    encoder.encode_queries(["alone"])
    assert callers == [threading.current_thread()]  # no hand-off to another thread
    assert encoder.identity() == slow.identity() and encoder.dimension == 256
    assert encoder.encode_documents(["a document"]).shape == (1, 256)


def test_multi_query_calls_keep_their_order():
    encoder = BatchingEncoder(SlowEncoder(), max_batch=4)
    texts = [f"text {number}" for number in range(6)]
    np.testing.assert_array_equal(encoder.encode_queries(texts), FakeEncoder().encode_queries(texts))
    answers = run_concurrently(lambda number: encoder.encode_queries([f"a{number}", f"b{number}"]), 5)
    for number, vectors in enumerate(answers):
        np.testing.assert_array_equal(vectors, FakeEncoder().encode_queries([f"a{number}", f"b{number}"]))


def test_a_failing_pass_fails_its_callers_and_the_next_pass_runs():
    class Flaky(FakeEncoder):
        fail = True

        def encode_queries(self, texts, show_progress=False):
            if self.fail:
                self.fail = False
                raise RuntimeError("tower exploded")
            return super().encode_queries(texts)

    encoder = BatchingEncoder(Flaky())
    with pytest.raises(RuntimeError, match="exploded"):
        encoder.encode_queries(["first"])
    assert encoder.encode_queries(["second"]).shape == (1, 256)
    with pytest.raises(Exception, match="empty"):
        encoder.encode_queries([" "])  # checked in the caller's thread, before queueing
