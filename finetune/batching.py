"""Batches without known false negatives.

MultipleNegativesRankingLoss treats every other document in a batch as a negative for a query. When
the training data itself says that document is relevant to that query (NFCorpus judges about 43
documents per training query, and popular documents are relevant to hundreds of queries), the loss
pushes a relevant document away: a *known* false negative. sentence-transformers'
``NO_DUPLICATES`` sampler only keeps identical texts apart. :class:`KnownPositivesBatchSampler` also
keeps apart rows whose documents are judged relevant to each other's queries.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from functools import partial

import torch
from sentence_transformers.base.sampler import DefaultBatchSampler

logger = logging.getLogger(__name__)


class KnownPositivesBatchSampler(DefaultBatchSampler):
    """Seeded batches in which no row's documents (positive and negatives) are a known positive of
    another row's query, and no query or document appears twice.

    Batches are filled greedily from a seeded shuffle; a row that conflicts with the batch being
    filled waits for a later one. When no waiting row fits (the end of an epoch on dense judgements),
    the batch is completed with rows that only avoid repeats, so every epoch has the number of
    batches the trainer planned for; how many rows that took is logged.

    ``row_queries[i]`` is the query id of dataset row ``i``, ``row_documents[i]`` the ids of its
    documents, and ``positives`` maps a query id to every document id judged relevant to it.

    Example:
        >>> sampler = KnownPositivesBatchSampler(range(3), batch_size=2, drop_last=False,
        ...     row_queries=["q1", "q2", "q3"], row_documents=[["a"], ["b"], ["c"]],
        ...     positives={"q1": {"a", "b"}, "q2": {"b"}, "q3": {"c"}})
        >>> any({0, 1} <= set(batch) for batch in sampler)  # b is relevant to q1: never together
        False
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns=None,
        generator: torch.Generator | None = None,
        seed: int = 0,
        *,
        row_queries: Sequence[str],
        row_documents: Sequence[Sequence[str]],
        positives: Mapping[str, set[str]],
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        if not len(row_queries) == len(row_documents) == len(dataset):
            raise ValueError(
                f"{len(row_queries)} queries and {len(row_documents)} document lists for {len(dataset)} rows"
            )
        self.row_queries = list(row_queries)
        self.row_documents = [frozenset(documents) for documents in row_documents]
        self.positives = {query: frozenset(documents) for query, documents in positives.items()}
        self.relaxed_rows = 0  # rows placed in the last epoch only by the repeat rule

    def __len__(self) -> int:
        rows = len(self.row_queries)
        return rows // self.batch_size if self.drop_last else math.ceil(rows / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        waiting = torch.randperm(len(self.row_queries), generator=generator).tolist()
        self.relaxed_rows = 0
        for _ in range(len(self)):
            batch, waiting = self._fill(waiting)
            yield batch
        if self.relaxed_rows:
            logger.info(
                "epoch %d: %d of %d rows shared a batch with a known positive (no other batch fitted them)",
                self.epoch,
                self.relaxed_rows,
                len(self.row_queries),
            )

    def _fill(self, waiting: list[int]) -> tuple[list[int], list[int]]:
        batch: list[int] = []
        queries: set[str] = set()
        documents: set[str] = set()
        relevant: set[str] = set()  # known positives of the batch's queries
        left: list[int] = []
        for position, row in enumerate(waiting):
            if len(batch) == self.batch_size:
                left.extend(waiting[position:])
                break
            query, row_documents = self.row_queries[row], self.row_documents[row]
            query_positives = self.positives.get(query, frozenset())
            if (
                query in queries
                or not row_documents.isdisjoint(documents)
                or not row_documents.isdisjoint(relevant)
                or not query_positives.isdisjoint(documents)
            ):
                left.append(row)
                continue
            batch.append(row)
            queries.add(query)
            documents |= row_documents
            relevant |= query_positives
        if len(batch) < self.batch_size and left:
            batch, left = self._relax(batch, left, queries, documents)
        return batch, left

    def _relax(self, batch: list[int], left: list[int], queries: set[str], documents: set[str]):
        """Complete a batch that no waiting row fits: first without repeats, then with whatever is left."""
        still_left = []
        for row in left:
            fits = self.row_queries[row] not in queries and self.row_documents[row].isdisjoint(documents)
            if len(batch) < self.batch_size and fits:
                batch.append(row)
                queries.add(self.row_queries[row])
                documents |= self.row_documents[row]
                self.relaxed_rows += 1
            else:
                still_left.append(row)
        while len(batch) < self.batch_size and still_left:
            batch.append(still_left.pop(0))
            self.relaxed_rows += 1
        return batch, still_left


def known_positives_sampler(
    row_queries: Sequence[str], row_documents: Sequence[Sequence[str]], positives: Mapping[str, set[str]]
):
    """The ``batch_sampler`` argument of the trainer: a factory taking the trainer's usual arguments."""
    return partial(
        KnownPositivesBatchSampler, row_queries=row_queries, row_documents=row_documents, positives=positives
    )
