"""The ``dualsearch`` command: thin wrappers that build a config, call one library function, print.

Every sub-command is ``dualsearch NAME ...``; errors print one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from search.cli_update import add_field_arguments
from search.errors import SearchError

logger = logging.getLogger(__name__)
EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 130


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_index(commands) -> None:
    parser = commands.add_parser("index", help="encode a corpus into an index directory")
    parser.add_argument("corpus", help="a corpus file (.jsonl .csv .tsv .parquet), a BEIR or save_to_disk directory, "
                                       "hf:NAME[:SPLIT], 'default' (Python stdlib docs) or 'tiny'")
    parser.add_argument("--out", required=True, help="index directory to create (or rebuild)")
    parser.add_argument("--model", default="default", help="towers: a sentence-transformers path or hub id "
                                                           "(default: two all-MiniLM-L6-v2 towers)")
    parser.add_argument("--index-factory", default=None, help="FAISS factory string, e.g. Flat, 'IVF,Flat' (lists "
                                                              "derived from the corpus), IVF1024,SQ8, 'IVF,PQ32', HNSW32")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="documents per forward pass (default 32)")
    parser.add_argument("--skip-invalid", action="store_true", help="skip malformed records and report each, instead of stopping")
    add_field_arguments(parser)
    parser.set_defaults(run=_run_index)


def _run_index(args) -> int:
    from corpora.records import FieldNames
    from search.encoder import DualEncoder
    from search.indexer import IndexConfig, index_corpus

    config = IndexConfig(factory=args.index_factory)
    encoder = DualEncoder.load(args.model, batch_size=args.batch_size)
    report, skipped = index_corpus(args.corpus, args.out, encoder, FieldNames(args.id_field, args.title_field, args.text_field),
                                   config, skip_invalid=args.skip_invalid, show_progress=True)
    for message in skipped:
        print(f"skipped: {message}")
    nprobe = f", default nprobe {report.default_nprobe}" if report.nlist else ""
    print(f"indexed {report.document_count} documents into {args.out} ({report.factory}{nprobe}) "
          f"in {report.encode_seconds + report.index_seconds:.1f}s")
    return EXIT_OK


def _add_search(commands) -> None:
    parser = commands.add_parser("search", help="answer a query from an index directory")
    parser.add_argument("index_dir", metavar="DIR", help="index directory ('default': the stdlib docs index, built on first use)")
    parser.add_argument("query", help="query text")
    parser.add_argument("-k", type=positive_int, default=10, help="number of results (default 10)")
    parser.add_argument("--nprobe", type=positive_int, default=None, help="inverted lists to visit (default: the index's)")
    parser.add_argument("--json", action="store_true", help="print results as a JSON list")
    parser.set_defaults(run=_run_search)


def _run_search(args) -> int:
    import dataclasses

    from search.defaults import resolve_index_dir
    from search.searcher import Searcher

    searcher = Searcher.open(resolve_index_dir(args.index_dir, show_progress=True))
    results = searcher.search(args.query, k=args.k, nprobe=args.nprobe)
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in results], ensure_ascii=False, indent=2))
        return EXIT_OK
    if not results:
        print("no results")
    for result in results:
        snippet = " ".join(result.text.split())[:160]
        print(f"{result.rank:>3}. {result.score:.3f}  {result.title or result.doc_id}  [{result.doc_id}]\n     {snippet}")
    return EXIT_OK


def _add_evaluate(commands) -> None:
    parser = commands.add_parser("evaluate", help="nDCG@10, Recall@100 and MRR@10 on BEIR queries and judgements")
    parser.add_argument("index_dir", metavar="DIR", help="index directory")
    parser.add_argument("--queries", required=True, metavar="BEIR_DIR", help="BEIR directory with queries.jsonl and qrels/")
    parser.add_argument("--split", default="test", help="qrels split (default test)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--nprobe", type=positive_int, default=None, help="inverted lists to visit (default: the index's)")
    how.add_argument("--exact", action="store_true", help="brute-force search instead of the ANN index")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args) -> int:
    from search.evaluation import evaluate
    from search.searcher import Searcher

    searcher = Searcher.open(args.index_dir)
    metrics = evaluate(searcher, args.queries, args.split, nprobe=args.nprobe, exact=args.exact, show_progress=True)
    if args.json:
        print(json.dumps({name: round(value, 6) for name, value in metrics.items()}))
    else:
        how = "exact" if args.exact else f"nprobe {args.nprobe or searcher.manifest.default_nprobe}"
        print(f"{args.queries} split {args.split} ({how}): " + "  ".join(f"{n} {v:.4f}" for n, v in metrics.items()))
    return EXIT_OK


from demo.cli import add_demo_command  # noqa: E402  (cheap: Gradio loads only when the command runs)
from finetune.cli import add_finetune_command  # noqa: E402  (cheap: torch loads only when the command runs)

from search.cli_update import add_add_command, add_delete_command, add_reindex_command  # noqa: E402

COMMANDS: list[Callable] = [_add_index, _add_search, _add_evaluate, add_reindex_command, add_add_command, add_delete_command,
                            add_demo_command, add_finetune_command]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dualsearch", description="Semantic search on query and document towers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details (and tracebacks of errors)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(commands)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # it narrates its CPU feature probing


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dualsearch`` with ``argv`` (default: the process arguments); returns the exit code."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.run(args)
    except SearchError as error:
        if args.verbose:
            logger.exception("failed")
        print(f"dualsearch: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("dualsearch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
