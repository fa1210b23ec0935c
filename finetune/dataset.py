"""The ``datasets.Dataset`` the trainer reads: columns ``query``, ``document`` and, with negatives,
``negative`` (one per pair) or ``negative_1`` ... ``negative_n``; and the Router mapping of each column."""

from __future__ import annotations

from collections.abc import Sequence

from dualsearch.errors import InvalidInputError
from dualsearch.finetune.data import TrainingData
from dualsearch.towers.weights import DOCUMENT_ROUTE, QUERY_ROUTE

Pair = tuple[str, str]
LABEL_COLUMN = "label"  # sentence-transformers hands this column to the loss as ``labels``


def negative_columns(count: int) -> list[str]:
    """Column names of ``count`` negatives per pair.

    Example:
        >>> negative_columns(1), negative_columns(2)
        (['negative'], ['negative_1', 'negative_2'])
    """
    return ["negative"] if count == 1 else [f"negative_{i}" for i in range(1, count + 1)]


def build_dataset(
    data: TrainingData,
    pairs: Sequence[Pair],
    negatives: Sequence[Sequence[str]] | None = None,
    labels: Sequence[float] | None = None,
):
    """One row per pair: the query text, the positive document's text, then its negatives' texts, and
    ``labels`` (one number per row, which the loss receives; :mod:`dualsearch.finetune.logq`) last.

    Example:
        >>> from dualsearch.finetune.data import load_training_data
        >>> data = load_training_data("tiny", split="test")
        >>> build_dataset(data, [("q1", "tea-black")], [["tea-green"]]).column_names
        ['query', 'document', 'negative']
    """
    from datasets import Dataset

    columns = {"query": [data.queries[q] for q, _ in pairs], "document": [data.documents[d] for _, d in pairs]}
    count = len(negatives[0]) if negatives else 0
    if negatives is not None and any(len(row) != count for row in negatives):
        raise InvalidInputError("every pair needs the same number of negatives")
    for position, name in enumerate(negative_columns(count) if count else []):
        columns[name] = [data.documents[row[position]] for row in negatives]
    if labels is not None:
        columns[LABEL_COLUMN] = list(labels)
    return Dataset.from_dict(columns)


def router_mapping(column_names: Sequence[str]) -> dict[str, str]:
    """Which tower encodes each text column: queries the query tower, everything else the document tower
    (the label column is not text).

    Example:
        >>> router_mapping(["query", "document", "negative", "label"])
        {'query': 'query', 'document': 'document', 'negative': 'document'}
    """
    texts = [name for name in column_names if name != LABEL_COLUMN]
    return {name: QUERY_ROUTE if name == "query" else DOCUMENT_ROUTE for name in texts}
