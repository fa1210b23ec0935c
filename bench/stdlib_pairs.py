"""CoNaLa's questions as a training collection for the default index's query tower.

    python -m bench.stdlib_pairs --out WORK/conala-stdlib [--conala DIR]

Maps every CoNaLa record's snippet to the default corpus's documents it uses
(:mod:`dualsearch.corpora.stdlib_questions`), groups records by ``question_id``, holds out
:data:`DEV_FRACTION` of the train questions as dev (by a seeded hash of the id, so a question's
records never straddle the split), and writes a BEIR directory a ``dualsearch finetune`` run reads:
the default corpus as ``corpus.jsonl``, every intent and rewritten intent as a query, and
``qrels/{train,dev,test}.tsv``. Returns (and prints) how many questions map, to how many documents.

Three more kinds of train pairs join CoNaLa's, all from the Python documentation, all train only:

- **FAQ questions** (:mod:`dualsearch.corpora.stdlib_faq`) with the documents their answers name, read
  from the documentation's sources (``--python-docs``: Debian's ``python3.X-doc`` installs them under
  /usr/share/doc/python3.X/html/_sources; a CPython checkout's ``Doc/`` works too).
- **Anchors**: a docstring's summary sentence → its own document, for :data:`ANCHORS` functions,
  classes and methods taken after the known-item dev pick in the same seeded order
  (:func:`bench.stdlib_dev.known_item_queries`), so no dev item is trained on. They keep the query tower
  matching the words of the docs while CoNaLa teaches it the words of questions.
- **Reference descriptions** (:mod:`dualsearch.corpora.stdlib_reference`): the library reference's
  description of an object → its document, for the :data:`REFERENCES` documents code uses most (the
  usage prior's counts; ties by id), the dev known items left out. The reference says in other words
  what a docstring says (``collections.deque``: "appends and pops from either side"), which the anchors,
  a docstring's own words, cannot teach. Read from the same documentation sources as the FAQ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from bench.common import DEFAULT_DATA

DEV_FRACTION = 0.15
SPLIT_SEED = "stdlib-towers-1"
ANCHORS = 2000
REFERENCES = 2000  # with CoNaLa's and the anchors' pairs, under the recipe's 8,000 (two epochs, no anchoring)
PYTHON_DOCS = Path(f"/usr/share/doc/python{sys.version_info.major}.{sys.version_info.minor}/html/_sources")


def is_dev_question(question_id: int, fraction: float = DEV_FRACTION, seed: str = SPLIT_SEED) -> bool:
    """Whether a train question is held out as dev: a seeded hash of its id, stable across runs.

    Example:
        >>> sum(is_dev_question(number) for number in range(1000)) in range(120, 181)
        True
    """
    digest = hashlib.sha256(f"{seed}:{question_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def conala_dir(data_dir: Path = DEFAULT_DATA) -> Path:
    return Path(data_dir) / "conala"


def read_conala(directory: Path, split: str) -> list[dict]:
    return json.loads((Path(directory) / f"conala-{split}.json").read_text(encoding="utf-8"))


def write_collection(
    out: Path,
    conala: Path,
    documents,
    python_docs: Path | None = PYTHON_DOCS,
    anchors: int = ANCHORS,
    references: int = REFERENCES,
) -> dict:
    """Write the BEIR directory at ``out`` from CoNaLa at ``conala``, the FAQ and ``references`` reference
    descriptions under ``python_docs`` (None: neither), ``anchors`` summary pairs and the corpus
    ``documents``; returns the counts per split and per source."""
    from dualsearch.corpora.stdlib_questions import question_pairs

    documents = list(documents)
    corpus_ids = [document.id for document in documents]
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for document in documents:
            handle.write(json.dumps({"_id": document.id, "title": document.title, "text": document.text}) + "\n")
    splits: dict[str, list] = {"train": [], "dev": [], "test": []}
    counts: dict[str, dict] = {}
    for source in ("train", "test"):
        records = read_conala(conala, source)
        questions = question_pairs(records, corpus_ids)
        for question in questions:
            split = source if source == "test" or not is_dev_question(question.question_id) else "dev"
            splits[split].append(question)
        counts[source] = {"records": len(records), "questions": len({r["question_id"] for r in records})}
    extra = documentation_pairs(documents, corpus_ids, python_docs, anchors, references)
    counts["faq"] = {"questions": sum(1 for q in extra if str(q.question_id).startswith("faq"))}
    counts["anchors"] = {"documents": sum(1 for q in extra if str(q.question_id).startswith("anchor"))}
    counts["reference"] = {"documents": len({d for q in extra if str(q.question_id).startswith("reference")
                                             for d in q.documents})}  # fmt: skip
    splits["train"].extend(extra)
    with (out / "queries.jsonl").open("w", encoding="utf-8") as queries:
        for split, questions in splits.items():
            with (out / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as qrels:
                qrels.write("query-id\tcorpus-id\tscore\n")
                for question in questions:
                    for number, text in enumerate(question.queries):
                        query_id = f"{question.question_id}-{number}"
                        queries.write(json.dumps({"_id": query_id, "text": text}) + "\n")
                        for doc_id in question.documents:
                            qrels.write(f"{query_id}\t{doc_id}\t1\n")
            counts.setdefault(split, {})
            counts[split].update(
                {
                    "mapped_questions": len(questions),
                    "queries": sum(len(q.queries) for q in questions),
                    "pairs": sum(len(q.queries) * len(q.documents) for q in questions),
                    "distinct_documents": len({d for q in questions for d in q.documents}),
                }
            )
    return counts


def documentation_pairs(
    documents, corpus_ids, python_docs: Path | None, anchors: int, references: int = REFERENCES
) -> list:
    """FAQ questions, anchor summaries and reference descriptions as :class:`QuestionPairs` (ids
    ``faq-N``, ``anchor-N``, ``reference-N``)."""
    from bench.stdlib_dev import KNOWN_ITEMS, known_item_queries
    from dualsearch.corpora.stdlib_faq import faq_pairs
    from dualsearch.corpora.stdlib_questions import QuestionPairs

    pairs = []
    if python_docs is not None:
        if not Path(python_docs).is_dir():
            raise SystemExit(
                f"{python_docs}: no Python documentation sources; install them (Debian: apt-get install "
                f"python{sys.version_info.major}.{sys.version_info.minor}-doc) or pass --python-docs DIR"
            )
        for number, (question, ids) in enumerate(faq_pairs(python_docs, corpus_ids), 1):
            pairs.append(QuestionPairs(f"faq-{number}", (question,), tuple(ids)))
        if references:
            held_out = {row["answers"][0] for row in known_item_queries(documents).values()}
            for number, (text, ids) in enumerate(
                reference_descriptions(documents, python_docs, references, held_out), 1
            ):
                pairs.append(QuestionPairs(f"reference-{number}", (text,), tuple(ids)))
    if anchors:
        picked = known_item_queries(documents, count=KNOWN_ITEMS + anchors)
        for number, row in enumerate(list(picked.values())[KNOWN_ITEMS:], 1):
            pairs.append(QuestionPairs(f"anchor-{number}", (row["query"],), tuple(row["answers"])))
    return pairs


def reference_descriptions(documents, python_docs: Path, count: int, held_out: set[str]) -> list[tuple[str, list]]:
    """The reference descriptions of the ``count`` most used documents (usage prior, then id) that have
    one, leaving out ``held_out`` ids; the first description of a document when the reference has several.

    Example:
        >>> from types import SimpleNamespace as Doc
        >>> documents = [Doc(id="function:a", metadata={"usage": 5}), Doc(id="function:b", metadata={"usage": 9}),
        ...              Doc(id="function:c", metadata={})]
        >>> import unittest.mock as mock
        >>> found = [("A does a.", ["function:a"]), ("B does b.", ["function:b"]), ("C.", ["function:c"])]
        >>> with mock.patch("dualsearch.corpora.stdlib_reference.reference_pairs", return_value=found):
        ...     reference_descriptions(documents, Path("docs"), 2, held_out={"function:b"})
        [('A does a.', ['function:a']), ('C.', ['function:c'])]
    """
    from dualsearch.corpora import stdlib_reference

    usage = {document.id: float(document.metadata.get("usage") or 0) for document in documents}
    first: dict[str, tuple[str, list]] = {}
    for text, ids in stdlib_reference.reference_pairs(python_docs, usage):
        kept = [doc_id for doc_id in ids if doc_id not in held_out]
        if kept:
            first.setdefault(kept[0], (text, kept))
    ranked = sorted(first, key=lambda doc_id: (-usage[doc_id], doc_id))[:count]
    return [first[doc_id] for doc_id in ranked]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="BEIR directory to write")
    parser.add_argument("--conala", type=Path, default=conala_dir(), help="directory of conala-{train,test}.json")
    parser.add_argument("--python-docs", type=Path, default=PYTHON_DOCS, help="the Python documentation's sources")
    parser.add_argument("--anchors", type=int, default=ANCHORS, help="summary → document pairs (0: none)")
    parser.add_argument("--references", type=int, default=REFERENCES, help="reference → document pairs (0: none)")
    args = parser.parse_args(argv)
    from dualsearch.corpora.sources import read_corpus

    counts = write_collection(
        args.out, args.conala, read_corpus("default"), args.python_docs, args.anchors, args.references
    )
    print(json.dumps(counts, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
