"""The dense side of a search over passages: passage rows to documents, and MaxP aggregation.

An index holds one vector per passage; a document's passages are the consecutive vector rows
``first[d] .. first[d] + counts[d] - 1``. A document scores as its best passage (MaxP, Dai and
Callan 2019), so a search over passages must fetch enough of them to find ``k`` distinct
documents: it starts at ``PASSAGE_OVERSAMPLING * k`` and widens while documents are missing.
"""

from __future__ import annotations

import numpy as np

from dualsearch.towers.similarity import pair_scores

PASSAGE_OVERSAMPLING = 4


class PassageMap:
    """Passage (vector) rows <-> document rows.

    Example:
        >>> passages = PassageMap(np.array([1, 3, 1]))  # document 1 has three passages
        >>> passages.row_to_doc.tolist(), passages.rows_of(np.array([1])).tolist()
        ([0, 1, 1, 1, 2], [1, 2, 3])
    """

    def __init__(self, counts: np.ndarray) -> None:
        self.counts = np.asarray(counts, np.int64)  # (n_documents,)
        self.first = np.cumsum(self.counts) - self.counts  # (n_documents,)
        self.row_to_doc = np.repeat(np.arange(len(self.counts)), self.counts)  # (n_passages,)

    @property
    def passage_count(self) -> int:
        return len(self.row_to_doc)

    def rows_of(self, doc_rows: np.ndarray) -> np.ndarray:
        """Every passage row of the given documents, in order: (p,) int64."""
        counts = self.counts[doc_rows]  # (a,)
        starts_in_output = np.cumsum(counts) - counts
        # each document's first row, repeated over its passages, plus 0, 1, ... within the document
        return np.repeat(self.first[doc_rows], counts) + np.arange(counts.sum()) - np.repeat(starts_in_output, counts)


def best_per_document(scores: np.ndarray, rows: np.ndarray, row_to_doc: np.ndarray):
    """MaxP over one query's passage hits, best first: (doc rows, scores, best passage rows).

    ``scores`` and ``rows`` are (p,) in descending score order, with -1 rows where nothing was found.

    Example:
        >>> best_per_document(np.array([0.9, 0.8, 0.5, 0.0]), np.array([2, 3, 0, -1]), np.array([0, 1, 1, 1]))
        ([1, 0], [0.9, 0.5], [2, 0])
    """
    found = rows >= 0
    scores, rows = scores[found], rows[found]
    documents = row_to_doc[rows]
    _, first = np.unique(documents, return_index=True)  # the first hit of a document is its best
    order = np.sort(first)
    return documents[order].tolist(), scores[order].astype(float).tolist(), rows[order].tolist()


def exact_max_passage(
    vectors: np.ndarray, passages: PassageMap, doc_rows: list[int], query: np.ndarray, similarity: str = "cosine"
):
    """Exact MaxP of some documents for one query vector (d,): (scores, best passage rows), scored by
    the towers' ``similarity`` as the index ranks (:func:`dualsearch.towers.similarity.pair_scores`).

    One gather and one product for all the documents' passages (a loop per document cost a
    memory-map lookup each: 8% of a loaded server's busy time).

    Example:
        >>> vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [1.0, 0.0]], np.float32)
        >>> exact_max_passage(vectors, PassageMap(np.array([1, 2, 1])), [1, 2], np.array([0.0, 1.0], np.float32))
        ([1.0, 0.0], [1, 3])
    """
    if not doc_rows:
        return [], []
    doc_rows = np.asarray(doc_rows, np.int64)
    rows = passages.rows_of(doc_rows)  # (p,) grouped by document, in the order given
    similarities = pair_scores(query, np.asarray(vectors[rows]), similarity)  # (p,)
    document_of_row = np.repeat(np.arange(len(doc_rows)), passages.counts[doc_rows])
    # within each document, highest similarity first (ties: the earlier passage, as argmax took)
    order = np.lexsort((np.arange(len(rows)), -similarities, document_of_row))
    best = order[np.cumsum(passages.counts[doc_rows]) - passages.counts[doc_rows]]
    return similarities[best].astype(float).tolist(), rows[best].tolist()
