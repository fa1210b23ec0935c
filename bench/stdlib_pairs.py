"""CoNaLa's questions as a training collection for the default index's query tower.

    python -m bench.stdlib_pairs --out WORK/conala-stdlib [--conala DIR]

Maps every CoNaLa record's snippet to the default corpus's documents it uses
(:mod:`dualsearch.corpora.stdlib_questions`), groups records by ``question_id``, holds out
:data:`DEV_FRACTION` of the train questions as dev (by a seeded hash of the id, so a question's
records never straddle the split), and writes a BEIR directory a ``dualsearch finetune`` run reads:
the default corpus as ``corpus.jsonl``, every intent and rewritten intent as a query, and
``qrels/{train,dev,test}.tsv``. Returns (and prints) how many questions map, to how many documents.

Two more kinds of train pairs join CoNaLa's, both from the Python documentation, both train only:

- **FAQ questions** (:mod:`dualsearch.corpora.stdlib_faq`) with the documents their answers name, read
  from the documentation's sources (``--python-docs``: Debian's ``python3.X-doc`` installs them under
  /usr/share/doc/python3.X/html/_sources; a CPython checkout's ``Doc/`` works too).
- **Anchors**: a docstring's summary sentence → its own document, for :data:`ANCHORS` functions,
  classes and methods taken after the known-item dev pick in the same seeded order
  (:func:`bench.stdlib_dev.known_item_queries`), so no dev item is trained on. They keep the query tower
  matching the words of the docs while CoNaLa teaches it the words of questions.
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
    out: Path, conala: Path, documents, python_docs: Path | None = PYTHON_DOCS, anchors: int = ANCHORS
) -> dict:
    """Write the BEIR directory at ``out`` from CoNaLa at ``conala``, the FAQ under ``python_docs``
    (None: no FAQ pairs), ``anchors`` summary pairs and the corpus ``documents``; returns the counts
    per split and per source."""
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
    extra = documentation_pairs(documents, corpus_ids, python_docs, anchors)
    counts["faq"] = {"questions": sum(1 for q in extra if str(q.question_id).startswith("faq"))}
    counts["anchors"] = {"documents": sum(1 for q in extra if str(q.question_id).startswith("anchor"))}
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


def documentation_pairs(documents, corpus_ids, python_docs: Path | None, anchors: int) -> list:
    """FAQ questions and anchor summaries as :class:`QuestionPairs` (ids ``faq-N``, ``anchor-N``)."""
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
    if anchors:
        picked = known_item_queries(documents, count=KNOWN_ITEMS + anchors)
        for number, row in enumerate(list(picked.values())[KNOWN_ITEMS:], 1):
            pairs.append(QuestionPairs(f"anchor-{number}", (row["query"],), tuple(row["answers"])))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="BEIR directory to write")
    parser.add_argument("--conala", type=Path, default=conala_dir(), help="directory of conala-{train,test}.json")
    parser.add_argument("--python-docs", type=Path, default=PYTHON_DOCS, help="the Python documentation's sources")
    parser.add_argument("--anchors", type=int, default=ANCHORS, help="summary → document pairs (0: none)")
    args = parser.parse_args(argv)
    from dualsearch.corpora.sources import read_corpus

    counts = write_collection(args.out, args.conala, read_corpus("default"), args.python_docs, args.anchors)
    print(json.dumps(counts, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
