"""``dualsearch index | search | evaluate``: build an index, answer a query, measure quality."""

from __future__ import annotations

import json
from contextlib import closing
from functools import partial

from dualsearch.cli.arguments import (
    add_backend_argument,
    add_batch_size_argument,
    add_executor_arguments,
    add_field_arguments,
    add_skip_invalid_argument,
    executor,
    fields,
    nprobe_count,
    positive_int,
)
from dualsearch.cli.lazy_towers import LazyTowers
from dualsearch.cli.terminal import for_terminal
from dualsearch.corpora.sources import corpus_formats_help
from dualsearch.defaults import DEFAULT_CORPUS, DEFAULT_INDEX, DEFAULT_MODEL, PRIOR_WEIGHT, STDLIB_MODEL, K
from dualsearch.errors import InvalidInputError
from dualsearch.ranking.filters import merge_filters, parse_filter_option
from dualsearch.ranking.fusion import FUSIONS
from dualsearch.ranking.settings import MODES


def add_index_command(commands) -> None:
    parser = commands.add_parser("index", help="encode a corpus into an index directory")
    parser.add_argument("corpus", help=f"the corpus: {corpus_formats_help()}")
    parser.add_argument("--out", required=True, help="index directory to create (or rebuild)")
    parser.add_argument(
        "--model",
        default=None,
        help="towers: a sentence-transformers path or hub id (default: two all-MiniLM-L6-v2 towers; for the "
        f"'{DEFAULT_CORPUS}' corpus, '{STDLIB_MODEL}': the same towers tuned on Python questions)",
    )
    parser.add_argument(
        "--index-factory",
        default=None,
        help="FAISS factory string, e.g. Flat, 'IVF,Flat' (lists "
        "derived from the corpus), IVF1024,SQ8, 'IVF,PQ32', HNSW32",
    )
    parser.add_argument(
        "--on-disk",
        action="store_true",
        help="keep the IVF inverted lists in a file that searches memory-map (indexes larger than memory)",
    )
    parser.add_argument(
        "--filter-fields",
        nargs="+",
        default=(),
        metavar="FIELD",
        help="metadata fields to index for fast filtering (any field can be filtered on)",
    )
    parser.add_argument(
        "--passage-window",
        type=positive_int,
        default=None,
        metavar="TOKENS",
        help="tokens of text per passage (default: the document tower's window)",
    )
    parser.add_argument(
        "--passage-stride",
        type=positive_int,
        default=None,
        metavar="TOKENS",
        help="tokens between passage starts (default: the window, no overlap)",
    )
    parser.add_argument(
        "--lead-passage",
        action="store_true",
        help="also encode each document's first paragraph alone, when more text follows it "
        "(for texts that open with a summary, such as docstrings; the default index does)",
    )
    parser.add_argument(
        "--prior-field",
        default="",
        metavar="FIELD",
        help="numeric metadata field (a count such as views or links) whose log-scaled prior joins every "
        "score, by default in searches of this index",
    )
    parser.add_argument(
        "--prior-weight",
        type=float,
        default=None,
        metavar="W",
        help=f"the prior's weight, added to the fused score (default with --prior-field: {PRIOR_WEIGHT})",
    )
    add_boost_argument(
        parser,
        "add W to the score of documents whose metadata FIELD is VALUE, by default in searches of this "
        "index (repeatable; e.g. kind=function:0.08)",
    )
    parser.add_argument(
        "--shards",
        type=positive_int,
        default=None,
        metavar="N",
        help="split the index into N shards, each document routed by a hash of its id (docs/sharding.md); "
        "searches merge every shard's results exactly",
    )
    add_backend_argument(parser, "what encodes the documents (default: onnx-int8)")
    add_batch_size_argument(parser)
    add_executor_arguments(parser)
    add_skip_invalid_argument(parser)
    add_field_arguments(parser)
    parser.set_defaults(run=_run_index)


def _run_index(args) -> int:
    from dualsearch.towers.backends import load_encoder
    from dualsearch.write.build import IndexConfig, index_corpus
    from dualsearch.write.shard_build import index_sharded_corpus

    if args.model is None:
        args.model = STDLIB_MODEL if args.corpus == DEFAULT_CORPUS else DEFAULT_MODEL

    config = IndexConfig(
        factory=args.index_factory,
        passage_window=args.passage_window,
        passage_stride=args.passage_stride,
        lead_passage=args.lead_passage,
        filter_fields=tuple(args.filter_fields),
        on_disk=args.on_disk,
    )
    search_settings = _index_search_settings(args)  # a bad weight stops before anything is read
    encoder = LazyTowers(lambda: load_encoder(args.model, args.backend, args.batch_size))  # after validation
    build = partial(index_sharded_corpus, shards=args.shards) if args.shards else index_corpus
    with closing(executor(args, encoder)) as runner:
        report, skipped = build(
            args.corpus,
            args.out,
            encoder,
            fields=fields(args),
            config=config,
            skip_invalid=args.skip_invalid,
            show_progress=True,
            executor=runner,
            search_settings=search_settings,
        )
    for message in skipped:
        print(f"skipped: {for_terminal(message)}")
    nprobe = f", default nprobe {report.default_nprobe}" if report.nlist else ""
    split = f" in {len(report.shards)} shards of {', '.join(map(str, report.shards))}" if args.shards else ""
    print(
        f"indexed {report.document_count} documents into {args.out}{split} ({report.factory}{nprobe}) "
        f"in {report.encode_seconds + report.index_seconds:.1f}s"
    )
    return 0


def add_search_command(commands) -> None:
    parser = commands.add_parser("search", help="answer a query from an index directory")
    parser.add_argument(
        "index_dir",
        metavar="DIR",
        help=f"index directory ('{DEFAULT_INDEX}': the stdlib docs index, built on first use)",
    )
    parser.add_argument("query", help="query text")
    parser.add_argument("-k", type=positive_int, default=K, help=f"number of results (default {K})")
    parser.add_argument(
        "--nprobe", type=nprobe_count, default=None, help="inverted lists to visit (default: the index's)"
    )
    add_mode_arguments(parser)
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="CONDITION",
        help="only documents whose metadata meets it: FIELD=VALUE, FIELD>=VALUE (also <=, >, <) "
        'or a JSON object such as \'{"kind": ["class", "function"]}\'; repeatable (all hold)',
    )
    parser.add_argument(
        "--json", action="store_true", help="print the search as JSON, as the HTTP service answers it (docs/results.md)"
    )
    add_query_backend_argument(parser)
    parser.set_defaults(run=_run_search)


def add_query_backend_argument(parser) -> None:
    add_backend_argument(
        parser, "what encodes the query (default: the index's own ONNX query tower, without loading torch)"
    )


def _open_searcher(index_dir, backend: str | None):
    """A searcher on the index's own query tower, or on the towers that built it run by ``backend``."""
    from dualsearch.read.searcher import Searcher

    if backend is None:
        return Searcher.open(index_dir)
    from dualsearch.index.layout import current_version_dir
    from dualsearch.index.manifest import Manifest
    from dualsearch.index.shards import ShardMap, is_sharded
    from dualsearch.towers.backends import load_encoder

    if is_sharded(index_dir):
        model = ShardMap.read(index_dir).model
    else:
        model = Manifest.read(current_version_dir(index_dir)).model
    return Searcher.open(index_dir, encoder=LazyTowers(lambda: load_encoder(model, backend)))


def _index_search_settings(args):
    """The model's recommended search settings (``dualsearch finetune`` chose them on dev), with the
    prior given here."""
    from dualsearch.ranking.settings import SearchSettings, model_search_settings

    if args.prior_weight is not None and not args.prior_field:
        raise InvalidInputError("--prior-weight needs --prior-field (the metadata field to rank with)")
    weight = PRIOR_WEIGHT if args.prior_weight is None else args.prior_weight
    prior = {"prior_field": args.prior_field, "prior_weight": weight if args.prior_field else 0.0}
    boosts = {"boosts": _boosts(args)} if args.boost else {}
    return SearchSettings.from_dict({**model_search_settings(args.model), **prior, **boosts})


def _boosts(args) -> tuple | None:
    """The ``--boost`` options, parsed (None when there are none)."""
    from dualsearch.ranking.boosts import parse_boosts

    return parse_boosts(args.boost) if args.boost else None


def add_boost_argument(parser, help_text: str) -> None:
    parser.add_argument("--boost", action="append", default=[], metavar="FIELD=VALUE:W", help=help_text)


def add_mode_arguments(parser) -> None:
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="hybrid (towers and BM25, fused), dense (towers) or lexical (BM25); default: the index's",
    )
    parser.add_argument(
        "--fusion", choices=FUSIONS, default=None, help="how hybrid fuses: rrf or convex (default: the index's)"
    )
    parser.add_argument(
        "--dense-weight",
        type=float,
        default=None,
        metavar="W",
        help="the towers' weight in the convex fusion, 0 to 1 (default: the index's)",
    )
    parser.add_argument(
        "--prior-weight",
        type=float,
        default=None,
        metavar="W",
        help="the weight of the index's document prior (0 turns it off; default: the index's)",
    )
    add_boost_argument(
        parser,
        "add W to the score of documents whose metadata FIELD is VALUE (repeatable); replaces the index's "
        "boosts (e.g. kind=function:0 turns them off)",
    )


def _run_search(args) -> int:
    from dualsearch.profiles.stdlib import resolve_index_dir
    from dualsearch.requests.search import SearchRequest, answer, search_record

    spec = merge_filters([parse_filter_option(text) for text in args.filter]) if args.filter else None
    request = SearchRequest.checked(  # checked before an index is built or towers are loaded
        args.query,
        args.k,
        args.nprobe or 0,
        args.mode,
        spec,
        fusion=args.fusion,
        dense_weight=args.dense_weight,
        prior_weight=args.prior_weight,
        boosts=args.boost or None,
        limits=False,  # the user's own terminal: no service bounds on k or the query's length
    )
    with _open_searcher(resolve_index_dir(args.index_dir, show_progress=True), args.backend) as searcher:
        found = answer(searcher, request)
        record = search_record(searcher, request, found)
    results = found.results[0]
    if args.json:
        print(json.dumps(record, ensure_ascii=False, indent=2))
        return 0
    if not results:
        print("no results")
    for result in results:
        start, end = result.passage or (0, len(result.text))
        snippet = ("… " if start else "") + " ".join(result.text[start:end].split())[:160]
        snippet, title, doc_id = (for_terminal(text) for text in (snippet, result.title, result.doc_id))
        print(f"{result.rank:>3}. {result.score:.3f}  {title or doc_id}  [{doc_id}]\n     {snippet}")
    return 0


def add_evaluate_command(commands) -> None:
    parser = commands.add_parser("evaluate", help="nDCG@10, Recall@100 and MRR@10 on BEIR queries and judgements")
    parser.add_argument("index_dir", metavar="DIR", help="index directory")
    parser.add_argument(
        "--queries", required=True, metavar="BEIR_DIR", help="BEIR directory with queries.jsonl and qrels/"
    )
    parser.add_argument("--split", default="test", help="qrels split (default test)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--nprobe", type=nprobe_count, default=None, help="inverted lists to visit (default: the index's)")
    how.add_argument("--exact", action="store_true", help="brute-force search instead of the ANN index")
    add_mode_arguments(parser)
    parser.add_argument(
        "--ignore-identical-ids",
        action="store_true",
        help="drop a result whose id is the query's (BEIR/MTEB convention for ArguAna, Quora)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_query_backend_argument(parser)
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args) -> int:
    from dualsearch.read.evaluation import evaluate

    with _open_searcher(args.index_dir, args.backend) as searcher:
        metrics = evaluate(
            searcher,
            args.queries,
            args.split,
            nprobe=args.nprobe,
            exact=args.exact,
            show_progress=True,
            mode=args.mode,
            ignore_identical_ids=args.ignore_identical_ids,
            fusion=args.fusion,
            dense_weight=args.dense_weight,
            prior_weight=args.prior_weight,
            boosts=_boosts(args),
        )
        mode = args.mode or searcher.settings.mode
        default_nprobe = searcher.manifest.default_nprobe
    if args.json:
        print(json.dumps({name: round(value, 6) for name, value in metrics.items()}))
    else:
        how = f"{mode}, " + ("exact" if args.exact else f"nprobe {args.nprobe or default_nprobe}")
        print(f"{args.queries} split {args.split} ({how}): " + "  ".join(f"{n} {v:.4f}" for n, v in metrics.items()))
    return 0
