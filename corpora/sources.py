"""One entry point that reads any supported corpus: :func:`read_corpus`.

The forms a corpus can take are listed once, in :data:`CORPUS_FORMATS`; the CLI's help and the
README's table are rendered from it (a test keeps the README in step).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dualsearch.corpora import beir, files, hf
from dualsearch.corpora.document import Document
from dualsearch.corpora.records import FieldNames, InvalidHandler, RawRecords, validated_documents
from dualsearch.defaults import DEFAULT_CORPUS, TINY_CORPUS
from dualsearch.errors import CorpusNotFoundError

TINY_CORPUS_DIR = Path(__file__).parent / "tiny"


@dataclass(frozen=True)
class CorpusFormat:
    form: str  # how a user names it, as markdown
    reads: str  # what is read, as markdown


CORPUS_FORMATS = (
    CorpusFormat(
        f"`{DEFAULT_CORPUS}`",
        "the documentation of this interpreter's standard library (language topics, modules, classes, "
        "functions, methods, builtins, documented data), extracted at run time by importing the public "
        "modules in a separate, guarded process",
    ),
    CorpusFormat(
        f"`{TINY_CORPUS}`", "a small hand-written corpus with queries and judgements (`corpora/tiny`, BEIR layout)"
    ),
    CorpusFormat("a BEIR directory", "its `corpus.jsonl` (`_id`, `title`, `text`, `metadata`)"),
    CorpusFormat(
        "`file.jsonl`",
        "one JSON object a line; `--id-field`, `--title-field`, `--text-field` name the fields "
        "(default `_id`/`id`, `title`, `text`); other fields become metadata",
    ),
    CorpusFormat("`file.csv`, `file.tsv`", "a header row, then one document a row (same field options)"),
    CorpusFormat("`file.parquet`", "one document a row, read one record batch at a time"),
    CorpusFormat(
        "a `save_to_disk` directory, or `hf:NAME[:SPLIT]`",
        "a Hugging Face `datasets` dataset (the hub form needs the network)",
    ),
)

_FILE_READERS = {
    ".jsonl": files.read_jsonl,
    ".ndjson": files.read_jsonl,
    ".csv": files.read_delimited,
    ".tsv": files.read_delimited,
    ".parquet": files.read_parquet,
}


def corpus_formats_help() -> str:
    """The forms of a corpus argument, for command-line help.

    Example:
        >>> corpus_formats_help().startswith("'default' (the documentation of this interpreter")
        True
    """
    return "; ".join(f"{f.form.replace('`', chr(39))} ({f.reads.replace('`', '')})" for f in CORPUS_FORMATS)


def corpus_formats_markdown() -> str:
    """The README's table of corpus forms."""
    rows = ["| form | what it reads |", "|---|---|"] + [f"| {f.form} | {f.reads} |" for f in CORPUS_FORMATS]
    return "\n".join(rows)


def _raw_records(source: str) -> RawRecords:
    if source == DEFAULT_CORPUS:
        from dualsearch.corpora.stdlib_docs import stdlib_records

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
        source: One of the forms of :data:`CORPUS_FORMATS`.
        fields: Field names of id, title and text (default: ``_id``/``id``, ``title``, ``text``).
        on_invalid: Called with each invalid record's :class:`CorpusError`, which is then skipped;
            by default the first invalid record raises.

    Example:
        >>> docs = list(read_corpus("tiny"))
        >>> docs[0].id
        'tea-green'
    """
    return validated_documents(_raw_records(str(source)), fields or FieldNames(), on_invalid)
