"""The BEIR directory layout: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

Queries are read as id -> text only. Their ``metadata`` is deliberately never read: in SciFact it
holds the relevant document ids, i.e. the answers.
"""

from __future__ import annotations

from pathlib import Path

from dualsearch.corpora.files import read_jsonl
from dualsearch.corpora.text import is_blank
from dualsearch.corpora.text_checks import check_query
from dualsearch.errors import CorpusError, CorpusNotFoundError

Qrels = dict[str, dict[str, int]]


def is_beir_dir(path: Path) -> bool:
    return path.is_dir() and (path / "corpus.jsonl").is_file()


def corpus_path(beir_dir: str | Path) -> Path:
    path = Path(beir_dir) / "corpus.jsonl"
    if not path.is_file():
        raise CorpusNotFoundError(f"not a BEIR directory (no corpus.jsonl): {beir_dir}")
    return path


def read_queries(beir_dir: str | Path) -> dict[str, str]:
    """Map query id -> query text from ``queries.jsonl`` (metadata ignored on purpose)."""
    path = Path(beir_dir) / "queries.jsonl"
    if not path.is_file():
        raise CorpusNotFoundError(f"no queries.jsonl in {beir_dir}")
    queries: dict[str, str] = {}
    for location, record in read_jsonl(path):
        query_id, text = record.get("_id"), record.get("text")
        if query_id is None or str(query_id).strip() == "":
            raise CorpusError(f"{location}: query without an '_id'")
        if not isinstance(text, str) or is_blank(text):
            raise CorpusError(f"{location}: query {query_id} has no text")
        check_query(text, f"{location}: query {query_id}", CorpusError)
        queries[str(query_id)] = text
    return queries


def available_splits(beir_dir: str | Path) -> list[str]:
    return sorted(path.stem for path in (Path(beir_dir) / "qrels").glob("*.tsv"))


def read_qrels(beir_dir: str | Path, split: str) -> Qrels:
    """Map query id -> {document id: relevance} for one split (header line skipped, CRLF tolerated).

    Judgements with relevance 0 are kept: metrics libraries treat them as judged non-relevant.
    """
    path = Path(beir_dir) / "qrels" / f"{split}.tsv"
    if not path.is_file():
        raise CorpusNotFoundError(
            f"no qrels for split {split!r} in {beir_dir} (available: {available_splits(beir_dir)})"
        )
    qrels: Qrels = {}
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.rstrip("\r\n").split("\t")
            if line_number == 1 and fields[0] == "query-id":
                continue
            if not line.strip():
                continue
            if len(fields) != 3:
                raise CorpusError(f"{path}:{line_number}: expected 3 tab-separated fields, got {len(fields)}")
            query_id, document_id, score = fields
            try:
                qrels.setdefault(query_id, {})[document_id] = int(score)
            except ValueError:
                raise CorpusError(f"{path}:{line_number}: relevance {score!r} is not an integer") from None
    if not qrels:
        raise CorpusError(f"{path}: no judgements")
    return qrels
