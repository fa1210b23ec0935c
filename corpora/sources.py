"""One entry point that reads any supported corpus: :func:`read_corpus`.

A corpus is named by a string: ``default`` (the embedded Python standard library documentation),
``tiny`` (the small hand-written test corpus), a BEIR directory, a ``.jsonl``/``.csv``/``.tsv``/
``.parquet`` file, a ``save_to_disk`` dataset directory, or ``hf:NAME[:SPLIT]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from corpora import beir, files, hf
from corpora.document import Document
from corpora.records import FieldNames, InvalidHandler, RawRecords, validated_documents
from search.errors import CorpusNotFoundError

DEFAULT_CORPUS = "default"
TINY_CORPUS = "tiny"
TINY_CORPUS_DIR = Path(__file__).parent / "tiny"

_FILE_READERS = {
    ".jsonl": files.read_jsonl,
    ".ndjson": files.read_jsonl,
    ".csv": files.read_delimited,
    ".tsv": files.read_delimited,
    ".parquet": files.read_parquet,
}


def _raw_records(source: str) -> RawRecords:
    if source == DEFAULT_CORPUS:
        from corpora.stdlib_docs import stdlib_records

        return stdlib_records()
    if source == TINY_CORPUS:
        return files.read_jsonl(TINY_CORPUS_DIR / "corpus.jsonl")
    if source.startswith(hf.HUB_PREFIX):
        return hf.read_hf(source)
    path = Path(source)
    if beir.is_beir_dir(path):
        return files.read_jsonl(beir.corpus_path(path))
    if hf.is_saved_dataset(path):
        return hf.read_hf(source)
    if not path.exists():
        raise CorpusNotFoundError(f"corpus not found: {source}")
    reader = _FILE_READERS.get(path.suffix.lower())
    if reader is None:
        raise CorpusNotFoundError(
            f"cannot tell the format of {source}: expected one of {sorted(_FILE_READERS)}, a BEIR directory "
            f"(with corpus.jsonl), a save_to_disk dataset directory, hf:NAME, '{DEFAULT_CORPUS}' or '{TINY_CORPUS}'"
        )
    return reader(path)


def read_corpus(
    source: str | Path, fields: FieldNames | None = None, on_invalid: InvalidHandler | None = None
) -> Iterator[Document]:
    """Stream the documents of a corpus, validated.

    Args:
        source: See the module docstring for the accepted forms.
        fields: Field names of id, title and text (default: ``_id``/``id``, ``title``, ``text``).
        on_invalid: Called with each invalid record's :class:`CorpusError`, which is then skipped;
            by default the first invalid record raises.

    Example:
        >>> docs = list(read_corpus("tiny"))
        >>> docs[0].id
        'tea-green'
    """
    return validated_documents(_raw_records(str(source)), fields or FieldNames(), on_invalid)
