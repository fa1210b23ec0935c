"""Training data: queries, documents and positive judgements, read from a BEIR directory, a JSONL file
of pairs, or a Hugging Face dataset of pairs.

Everything is held by id, so pairs, dev hold-outs, mined negatives and dev evaluation share one
shape. Pair files have no ids: each distinct query text and document text gets one.

SciFact's ``queries.jsonl`` carries the answers in its ``metadata``; we read queries through
:func:`dualsearch.corpora.beir.read_queries`, which never looks at metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualsearch.corpora import beir, files, hf
from dualsearch.corpora.sources import TINY_CORPUS_DIR, read_corpus
from dualsearch.corpora.text import is_blank, text_problem
from dualsearch.corpora.text_checks import check_query
from dualsearch.defaults import TINY_CORPUS
from dualsearch.errors import CorpusNotFoundError, TrainingDataError

logger = logging.getLogger(__name__)

PAIR_FIELDS = ("query", "document", "negative")
PAIR_FILE_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class TrainingData:
    """Queries, documents and relevance judgements, all by id.

    Attributes:
        source: Where the data came from, for messages (``"data/scifact split train"``).
        queries: Query id -> query text (only judged queries).
        documents: Document id -> the text the document tower sees (BEIR: ``title + " " + text``).
        qrels: Query id -> {document id: relevance}, positive judgements only.
        negatives: (query id, document id) -> negative document ids given in the data, in order.

    Example:
        >>> data = load_training_data("tiny", split="test")
        >>> len(data.queries), data.qrels["q1"]
        (16, {'tea-black': 2, 'tea-green': 1})
    """

    source: str
    queries: dict[str, str]
    documents: dict[str, str]
    qrels: dict[str, dict[str, int]]
    negatives: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    # document id -> its title where the data keeps titles apart (BEIR): an index of these documents
    # puts the title before every passage, as an index of the corpus does
    titles: dict[str, str] = field(default_factory=dict)

    def body(self, doc_id: str) -> str:
        """A document's text without its title (``documents`` holds ``title + " " + text``).

        Example:
            >>> TrainingData("t", {}, {"d": "Tea Green tea."}, {}, titles={"d": "Tea"}).body("d")
            'Green tea.'
        """
        text, title = self.documents[doc_id], self.titles.get(doc_id, "")
        return text[len(title) + 1 :] if title and text.startswith(title + " ") else text

    def subset(self, query_ids: Iterable[str], source: str | None = None) -> TrainingData:
        """The same data restricted to some queries (documents are kept whole: they are the corpus)."""
        keep = set(query_ids)
        return TrainingData(
            source=source or self.source,
            queries={q: t for q, t in self.queries.items() if q in keep},
            documents=self.documents,
            qrels={q: d for q, d in self.qrels.items() if q in keep},
            negatives={pair: n for pair, n in self.negatives.items() if pair[0] in keep},
            titles=self.titles,
        )


def load_training_data(source: str | Path, split: str = "train") -> TrainingData:
    """Read training data from a BEIR directory (pairs from ``qrels/<split>.tsv``), a JSONL file with
    ``query``, ``document`` and optional ``negative`` fields, a ``save_to_disk`` dataset directory or
    ``hf:NAME[:SPLIT]`` with the same columns; ``tiny`` is the built-in tiny corpus's judgements.

    Example:
        >>> load_training_data("tiny", split="test").documents["tea-green"][:9]
        'Green tea'
    """
    text = str(source)
    path = TINY_CORPUS_DIR if text == TINY_CORPUS and not Path(text).exists() else Path(text)
    if text.startswith(hf.HUB_PREFIX) or hf.is_saved_dataset(path):
        return load_pair_records(hf.read_hf(text, split=None if text.startswith(hf.HUB_PREFIX) else split), text)
    if beir.is_beir_dir(path):
        return load_beir(path, split)
    if not path.exists():
        raise CorpusNotFoundError(f"training data not found: {text}")
    if path.is_file() and path.suffix.lower() in PAIR_FILE_SUFFIXES:
        return load_pair_records(files.read_jsonl(path), text)
    raise TrainingDataError(
        f"cannot tell the format of training data {text}: expected a BEIR directory (corpus.jsonl, queries.jsonl, "
        f"qrels/), a {'/'.join(PAIR_FILE_SUFFIXES)} file with fields {list(PAIR_FIELDS)}, a save_to_disk dataset "
        f"directory or hf:NAME[:SPLIT]"
    )


def load_beir(beir_dir: str | Path, split: str) -> TrainingData:
    """Pairs from a BEIR directory: every judgement with relevance > 0 in ``qrels/<split>.tsv``.

    Queries whose judgements are all 0 are skipped (logged); a judged query missing from
    ``queries.jsonl`` or a judged document missing from ``corpus.jsonl`` is refused.
    """
    source = f"{beir_dir} split {split}"
    judged = beir.read_qrels(beir_dir, split)
    qrels = {q: {d: r for d, r in docs.items() if r > 0} for q, docs in judged.items()}
    skipped = sorted(q for q, docs in qrels.items() if not docs)
    if skipped:
        logger.info(
            "%s: %d judged queries have no positive document; skipped, e.g. %s", source, len(skipped), skipped[:3]
        )
    qrels = {q: docs for q, docs in qrels.items() if docs}
    if not qrels:
        raise TrainingDataError(f"{source}: no usable pairs (no judgement with relevance > 0)")
    queries = beir.read_queries(beir_dir)  # never reads metadata (SciFact's holds the answers)
    _refuse_missing(source, "queries", sorted(set(qrels) - set(queries)), "queries.jsonl")
    corpus = list(read_corpus(str(beir_dir)))
    documents = {document.id: document.encoding_text() for document in corpus}
    titles = {document.id: document.title for document in corpus if document.title}
    unknown = sorted({d for docs in qrels.values() for d in docs} - set(documents))
    _refuse_missing(source, "documents", unknown, "corpus.jsonl")
    logger.info(
        "%s: %d queries, %d positive judgements, %d documents",
        source,
        len(qrels),
        sum(map(len, qrels.values())),
        len(documents),
    )
    return TrainingData(source, {q: queries[q] for q in qrels}, documents, qrels, titles=titles)


def _refuse_missing(source: str, what: str, missing: list[str], where: str) -> None:
    if missing:
        raise TrainingDataError(
            f"{source}: {len(missing)} judged {what} are not in {where} (unknown ids), e.g. {missing[:5]}"
        )


def load_pair_records(records: Iterable[tuple[str, Mapping[str, Any]]], source: str) -> TrainingData:
    """Build training data from ``(location, record)`` rows with ``query``, ``document`` and optional
    ``negative`` (a text or a list of texts) fields.

    Example:
        >>> data = load_pair_records([("rows:1", {"query": "tea?", "document": "Tea is a drink."})], "rows")
        >>> data.queries, data.qrels
        ({'q0': 'tea?'}, {'q0': {'d0': 1}})
    """
    builder = _PairBuilder(source)
    for location, record in records:
        builder.add(location, record)
    return builder.build()


class _PairBuilder:
    """Gives each distinct query and document text an id while rows are validated and collected."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.query_ids: dict[str, str] = {}
        self.document_ids: dict[str, str] = {}
        self.qrels: dict[str, dict[str, int]] = {}
        self.negatives: dict[tuple[str, str], list[str]] = {}

    def add(self, location: str, record: Mapping[str, Any]) -> None:
        query, document, negatives = _validated_row(location, record)
        query_id = self.query_ids.setdefault(query, f"q{len(self.query_ids)}")
        document_id = self.document_ids.setdefault(document, f"d{len(self.document_ids)}")
        self.qrels.setdefault(query_id, {})[document_id] = 1
        given = self.negatives.setdefault((query_id, document_id), [])
        for negative in negatives:
            negative_id = self.document_ids.setdefault(negative, f"d{len(self.document_ids)}")
            if negative_id not in given:
                given.append(negative_id)

    def build(self) -> TrainingData:
        if not self.qrels:
            raise TrainingDataError(f"{self.source}: no usable pairs (no rows with fields {list(PAIR_FIELDS[:2])})")
        positives = {(q, d) for q, docs in self.qrels.items() for d in docs}
        clashes = [(q, n) for (q, _), given in self.negatives.items() for n in given if (q, n) in positives]
        if clashes:
            raise TrainingDataError(f"{self.source}: {len(clashes)} negatives are also positives of the same query")
        return TrainingData(
            source=self.source,
            queries={query_id: text for text, query_id in self.query_ids.items()},
            documents={document_id: text for text, document_id in self.document_ids.items()},
            qrels=self.qrels,
            negatives={pair: tuple(given) for pair, given in self.negatives.items() if given},
        )


def _validated_row(location: str, record: Mapping[str, Any]) -> tuple[str, str, list[str]]:
    unknown = sorted(set(record) - set(PAIR_FIELDS))
    if unknown:
        raise TrainingDataError(
            f"{location}: unknown fields {unknown}; expected 'query', 'document' and optional 'negative'"
        )
    query = check_query(record.get("query"), location, TrainingDataError)
    document = record.get("document")
    if document is None:
        raise TrainingDataError(f"{location}: query {query[:60]!r} has no positive (field 'document')")
    problem = text_problem(document)
    if problem == "is empty":
        raise TrainingDataError(f"{location}: query {query[:60]!r} has an empty 'document'")
    if problem is not None:
        raise TrainingDataError(f"{location}: query {query[:60]!r}: the 'document' {problem}")
    negatives = record.get("negative")
    negatives = [] if negatives is None else [negatives] if isinstance(negatives, str) else negatives
    if not isinstance(negatives, list) or any(not isinstance(n, str) or is_blank(n) for n in negatives):
        raise TrainingDataError(f"{location}: 'negative' must be a non-empty text or a list of them")
    for negative in negatives:
        if text_problem(negative) is not None:
            raise TrainingDataError(f"{location}: query {query[:60]!r}: a 'negative' {text_problem(negative)}")
    if document in negatives:
        raise TrainingDataError(f"{location}: a 'negative' is the same text as the 'document'")
    return query, document, negatives
