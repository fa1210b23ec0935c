"""Interaction logs as training data: what users were shown for a query and what they opened.

A log is a JSON Lines file of ``{"query": text, "shown": [doc ids in rank order], "clicked": [doc ids],
"time"?: ...}`` records, read against a corpus (any form ``dualsearch index`` takes) that holds the
documents' texts. Opened documents are positives. Documents shown *above the lowest click* and not
opened are impression negatives: the user saw them and passed over them for something lower down
(documents below the last click may never have been looked at, so they say nothing).

Records that cannot be used are counted by reason and reported, never dropped silently: no click, a
click on a document that was not shown, a document id the corpus does not have. A log with no usable
record is an error.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualsearch.corpora import files
from dualsearch.corpora.sources import read_corpus
from dualsearch.corpora.text_checks import check_query
from dualsearch.errors import TrainingDataError
from dualsearch.finetune.data import TrainingData

logger = logging.getLogger(__name__)

LOG_FIELDS = ("query", "shown", "clicked", "time")


@dataclass
class LogReport:
    """What reading a log found: records used, records set aside by reason, and what was built."""

    records: int = 0
    used: int = 0
    set_aside: Counter = field(default_factory=Counter)  # reason -> records
    clicks: int = 0
    impression_negatives: int = 0
    queries: int = 0  # distinct query texts with at least one click

    def summary(self) -> str:
        aside = ", ".join(f"{count} {reason}" for reason, count in sorted(self.set_aside.items())) or "none"
        return (
            f"{self.records} records: {self.used} used ({self.clicks} clicks on {self.queries} distinct queries, "
            f"{self.impression_negatives} impression negatives); set aside: {aside}"
        )


def is_click_log(path: str | Path) -> bool:
    """True if ``path`` is a JSON Lines file whose first record has ``shown`` and ``clicked``."""
    path = Path(path)
    if not (path.is_file() and path.suffix.lower() in (".jsonl", ".ndjson")):
        return False
    for _, record in files.read_jsonl(path):
        return isinstance(record, Mapping) and "shown" in record and "clicked" in record
    return False


def load_click_log(path: str | Path, corpus: str | Path) -> tuple[TrainingData, LogReport]:
    """Training data from a click log: positives from clicks, impression negatives per (query, click).

    Example:
        >>> data, report = load_click_log("log.jsonl", "corpus.jsonl")  # doctest: +SKIP
        >>> print(report.summary())  # doctest: +SKIP
        3 records: 2 used (3 clicks on 2 distinct queries, 1 impression negatives); set aside: 1 no click
    """
    documents = {document.id: document.encoding_text() for document in read_corpus(str(corpus))}
    data, report = click_records_to_data(files.read_jsonl(path), documents, f"{path} against {corpus}")
    logger.info("%s: %s", path, report.summary())
    return data, report


def click_records_to_data(
    records: Iterable[tuple[str, Any]], documents: dict[str, str], source: str
) -> tuple[TrainingData, LogReport]:
    """Build training data from ``(location, record)`` rows of a click log and the corpus's texts.

    Example:
        >>> rows = [("l:1", {"query": "tea", "shown": ["a", "b", "c"], "clicked": ["b"]}),
        ...         ("l:2", {"query": "tea", "shown": ["b", "a"], "clicked": []})]
        >>> data, report = click_records_to_data(rows, {"a": "A", "b": "B", "c": "C"}, "log")
        >>> data.qrels, data.negatives, dict(report.set_aside)
        ({'q0': {'b': 1}}, {('q0', 'b'): ('a',)}, {'no click': 1})
    """
    report = LogReport()
    query_ids: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    skipped: dict[tuple[str, str], list[str]] = {}
    for location, record in records:
        report.records += 1
        query, shown, clicked = _validated_record(location, record)
        reason = _unusable(shown, clicked, documents)
        if reason:
            report.set_aside[reason] += 1
            continue
        report.used += 1
        report.clicks += len(clicked)
        query_id = query_ids.setdefault(query, f"q{len(query_ids)}")
        lowest = max(shown.index(d) for d in clicked)
        passed_over = [d for d in shown[:lowest] if d not in clicked]
        for document in clicked:
            qrels.setdefault(query_id, {})[document] = 1
            given = skipped.setdefault((query_id, document), [])
            given.extend(d for d in passed_over if d not in given)
    if not qrels:
        raise TrainingDataError(f"{source}: no usable record ({report.summary()})")
    # a document opened for the query in another record is a positive there, not a negative
    negatives = {pair: tuple(d for d in given if d not in qrels[pair[0]]) for pair, given in skipped.items()}
    negatives = {pair: given for pair, given in negatives.items() if given}
    report.impression_negatives = sum(map(len, negatives.values()))
    report.queries = len(qrels)
    queries = {query_id: text for text, query_id in query_ids.items() if query_id in qrels}
    return TrainingData(source, queries, documents, qrels, negatives), report


def _validated_record(location: str, record: Any) -> tuple[str, list[str], list[str]]:
    if not isinstance(record, Mapping):
        raise TrainingDataError(f"{location}: a click-log record must be a JSON object")
    unknown = sorted(set(record) - set(LOG_FIELDS))
    if unknown:
        raise TrainingDataError(f"{location}: unknown fields {unknown}; expected {list(LOG_FIELDS)}")
    query = check_query(record.get("query"), location, TrainingDataError)
    lists = []
    for name in ("shown", "clicked"):
        value = record.get(name)
        if not isinstance(value, list) or any(not isinstance(d, str) or not d for d in value):
            raise TrainingDataError(f"{location}: '{name}' must be a list of document ids")
        lists.append(list(dict.fromkeys(value)))  # a repeated id counts once
    return query, lists[0], lists[1]


def _unusable(shown: list[str], clicked: list[str], documents: Mapping[str, str]) -> str | None:
    """Why a record cannot be used, or None."""
    if not clicked:
        return "no click"
    if any(d not in shown for d in clicked):
        return "click not in shown"
    if any(d not in documents for d in shown):
        return "unknown document id"
    return None
