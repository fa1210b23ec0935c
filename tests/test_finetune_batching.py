"""The batch sampler that keeps documents out of batches holding a query they are judged relevant to."""

from __future__ import annotations

import random

import pytest

from dualsearch.finetune.batching import KnownPositivesBatchSampler
from dualsearch.finetune.config import FinetuneConfig


def make_sampler(row_queries, row_documents, positives, batch_size=4, drop_last=False, seed=3):
    return KnownPositivesBatchSampler(
        range(len(row_queries)),
        batch_size=batch_size,
        drop_last=drop_last,
        seed=seed,
        row_queries=row_queries,
        row_documents=row_documents,
        positives=positives,
    )


def conflicts(batch, row_queries, row_documents, positives) -> int:
    """Pairs of rows in ``batch`` where one row's documents are judged relevant to the other's query."""
    found = 0
    for a in batch:
        for b in batch:
            if a != b and set(row_documents[b]) & positives[row_queries[a]]:
                found += 1
    return found


@pytest.fixture
def clustered():
    """60 queries in 15 topics of 4; every document of a topic is relevant to all 4 of its queries.
    A batch of 4 can always avoid conflicts (one query per topic), but a random one rarely does."""
    rng = random.Random(0)
    positives, row_queries, row_documents = {}, [], []
    for topic in range(15):
        documents = {f"t{topic}-d{i}" for i in range(6)}
        for member in range(4):
            query = f"t{topic}-q{member}"
            positives[query] = documents
            for document in rng.sample(sorted(documents), 2):
                row_queries.append(query)
                row_documents.append([document, f"neg-{topic}-{member}-{document}"])
    return row_queries, row_documents, positives


def test_every_row_once_per_epoch_in_the_planned_number_of_batches(clustered):
    sampler = make_sampler(*clustered)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 30
    assert sorted(row for batch in batches for row in batch) == list(range(120))


def test_no_batch_holds_a_known_positive_of_another_query_when_one_can_be_avoided(clustered):
    row_queries, row_documents, positives = clustered
    sampler = make_sampler(*clustered)
    assert sum(conflicts(batch, *clustered) for batch in sampler) == 0
    assert sampler.relaxed_rows == 0
    # the check above can fail: a plain shuffle of the same rows puts known positives together
    rows = list(range(120))
    random.Random(3).shuffle(rows)
    assert sum(conflicts(rows[i : i + 4], *clustered) for i in range(0, 120, 4)) > 0


def test_seeded_per_epoch(clustered):
    first, again = make_sampler(*clustered), make_sampler(*clustered)
    assert list(first) == list(again)
    again.set_epoch(1)
    assert list(again) != list(first)


def test_dense_judgements_still_fill_every_batch_and_count_the_relaxed_rows():
    # every document is relevant to every query: no batch can avoid them, training must go on anyway
    queries = [f"q{i}" for i in range(10)]
    documents = [[f"d{i}"] for i in range(10)]
    everything = {f"d{i}" for i in range(10)}
    sampler = make_sampler(queries, documents, {q: everything for q in queries}, batch_size=4, drop_last=True)
    batches = list(sampler)
    assert [len(batch) for batch in batches] == [4, 4] and len(sampler) == 2
    assert len({row for batch in batches for row in batch}) == 8
    assert sampler.relaxed_rows == 6  # each batch: one row chosen freely, three relaxed


def test_rows_and_ids_must_agree():
    with pytest.raises(ValueError, match="2 queries and 1 document lists for 2 rows"):
        make_sampler(["q1", "q2"], [["a"]], {})


def test_config_option_round_trips_and_is_checked():
    config = FinetuneConfig(avoid_known_positives=True)
    assert FinetuneConfig.from_dict(config.to_dict()).avoid_known_positives
    from dualsearch.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="avoid_known_positives must be true or false"):
        FinetuneConfig(avoid_known_positives="yes")
