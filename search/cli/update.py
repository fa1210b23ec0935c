"""``dualsearch reindex | add | delete | upgrade``: bring an index up to date (see :mod:`dualsearch.write.reindex`),
or to today's format (:mod:`dualsearch.write.upgrade`)."""

from __future__ import annotations

from contextlib import closing

from dualsearch.cli.arguments import (
    add_backend_argument,
    add_batch_size_argument,
    add_executor_arguments,
    add_field_arguments,
    add_skip_invalid_argument,
    executor,
    fields,
)
from dualsearch.cli.lazy_towers import LazyTowers
from dualsearch.cli.terminal import for_terminal
from dualsearch.defaults import BATCH_SIZE, MAX_DELETE_SHARE
from dualsearch.errors import InvalidInputError


def _towers(index_dir: str, model: str | None, batch_size: int = BATCH_SIZE, backend: str | None = None):
    """The towers named on the command line, or else those that built the index (on the backend that
    encoded its documents), loaded when first used (after the corpus and the index have been checked)."""
    from dualsearch.index.layout import current_version_dir
    from dualsearch.index.manifest import Manifest
    from dualsearch.index.query_tower import index_encoder
    from dualsearch.index.shards import ShardMap, is_sharded
    from dualsearch.towers.backends import load_encoder

    if is_sharded(index_dir):  # every shard holds the same towers: the first one's serve them all
        index_dir = ShardMap.read(index_dir).shard_dirs(index_dir)[0]

    def load():
        manifest = Manifest.read(current_version_dir(index_dir))
        if model is None and backend in (None, manifest.document_backend):
            # the index's query tower, and its document tower loaded only if a document is encoded
            return index_encoder(index_dir, manifest, batch_size=batch_size)
        return load_encoder(model or manifest.model, backend or manifest.document_backend, batch_size)

    return LazyTowers(load)


def add_upgrade_command(commands) -> None:
    parser = commands.add_parser(
        "upgrade", help="convert an index written in an older format to today's (nothing is encoded again)"
    )
    parser.add_argument("index_dir", metavar="DIR", help="index directory to convert")
    parser.add_argument(
        "--model", default=None, help="the towers that built the index (default: those its manifest names)"
    )
    add_backend_argument(parser, "what runs the towers (default: what encoded the index's documents)")
    parser.set_defaults(run=_run_upgrade)


def _run_upgrade(args) -> int:
    from dualsearch.index.manifest import FORMAT_VERSION
    from dualsearch.towers.backends import load_encoder
    from dualsearch.write.upgrade import index_format, recorded_backend, recorded_model, upgrade

    if index_format(args.index_dir) == FORMAT_VERSION:  # before seconds of loading towers
        print(f"{for_terminal(args.index_dir)}: already format {FORMAT_VERSION}: nothing to do")
        return 0
    backend = args.backend or recorded_backend(args.index_dir)  # its vectors are reused only on that backend
    encoder = load_encoder(args.model or recorded_model(args.index_dir), backend)
    report = upgrade(args.index_dir, encoder, show_progress=True)
    print(f"{for_terminal(args.index_dir)}: {report.summary()}")
    return 0


def add_reindex_command(commands) -> None:
    parser = commands.add_parser("reindex", help="update an index to match a corpus (or new towers)")
    parser.add_argument("index_dir", metavar="DIR", help="index directory to update")
    parser.add_argument("--corpus", required=True, help="the corpus as it is now (any form 'index' takes)")
    parser.add_argument(
        "--model",
        default=None,
        help="new towers (path or hub id): every document is re-encoded; default: the towers that built the index",
    )
    add_backend_argument(parser, "what runs the towers (default: what encoded the index's documents)")
    add_skip_invalid_argument(parser)
    parser.add_argument(
        "--retrain", action="store_true", help="retrain the IVF centroids even if the policy would keep them"
    )
    parser.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help=f"let the corpus delete more than {MAX_DELETE_SHARE * 100:.0f}%% of the index's documents "
        "(refused by default: a wrong --corpus would empty the index)",
    )
    add_batch_size_argument(parser)
    add_executor_arguments(parser)
    add_field_arguments(parser)
    parser.set_defaults(run=_run_reindex)


def _run_reindex(args) -> int:
    from dualsearch.index.shards import is_sharded
    from dualsearch.write.reindex import reindex
    from dualsearch.write.shard_writes import reindex_shards

    encoder = _towers(args.index_dir, args.model, args.batch_size, args.backend)
    options = {"skip_invalid": args.skip_invalid, "show_progress": True, "allow_mass_delete": args.allow_mass_delete}
    with closing(executor(args, encoder)) as runner:
        if is_sharded(args.index_dir):
            if args.retrain:
                raise InvalidInputError(
                    "--retrain: a sharded index's centroids are trained on every shard's vectors at once; "
                    "build a new one (`dualsearch index CORPUS --out NEW_DIR --shards N`)"
                )
            report = reindex_shards(args.index_dir, args.corpus, encoder, fields(args), executor=runner, **options)
        else:
            report = reindex(
                args.index_dir, args.corpus, encoder, fields(args), retrain=args.retrain, executor=runner, **options
            )
    _print_report(report)
    return 0


def add_add_command(commands) -> None:
    parser = commands.add_parser("add", help="add (or replace) the documents of a file")
    parser.add_argument("index_dir", metavar="DIR", help="index directory")
    parser.add_argument("file", metavar="FILE", help="documents to add (any corpus form)")
    add_skip_invalid_argument(parser)
    add_field_arguments(parser)
    parser.set_defaults(run=_run_add)


def _run_add(args) -> int:
    from dualsearch.index.shards import is_sharded
    from dualsearch.write.reindex import add_documents
    from dualsearch.write.shard_writes import add_to_shards

    write = add_to_shards if is_sharded(args.index_dir) else add_documents
    report = write(
        args.index_dir,
        args.file,
        _towers(args.index_dir, None),
        fields(args),
        skip_invalid=args.skip_invalid,
        show_progress=True,
    )
    _print_report(report)
    return 0


def add_delete_command(commands) -> None:
    parser = commands.add_parser("delete", help="remove documents by id")
    parser.add_argument("index_dir", metavar="DIR", help="index directory")
    parser.add_argument("doc_ids", metavar="ID", nargs="+", help="document ids to remove")
    parser.set_defaults(run=_run_delete)


def _run_delete(args) -> int:
    from dualsearch.index.shards import is_sharded
    from dualsearch.write.reindex import delete_documents
    from dualsearch.write.shard_writes import delete_from_shards

    delete = delete_from_shards if is_sharded(args.index_dir) else delete_documents
    _print_report(delete(args.index_dir, args.doc_ids, _towers(args.index_dir, None), show_progress=True))
    return 0


def add_optimize_command(commands) -> None:
    parser = commands.add_parser("optimize", help="merge an index's segments into one (nothing is encoded again)")
    parser.add_argument("index_dir", metavar="DIR", help="index directory")
    parser.set_defaults(run=_run_optimize)


def _run_optimize(args) -> int:
    from dualsearch.index.shards import ShardMap, is_sharded
    from dualsearch.write.reindex import optimize

    towers = _towers(args.index_dir, None)
    if not is_sharded(args.index_dir):
        _print_report(optimize(args.index_dir, towers, show_progress=True))
        return 0
    for directory in ShardMap.read(args.index_dir).shard_dirs(args.index_dir):  # centroids kept: still shared
        print(f"{directory.name}: ", end="")
        _print_report(optimize(directory, towers, show_progress=True))
    return 0


def _print_report(report) -> None:
    for message in report.skipped:
        print(f"skipped: {for_terminal(message)}")
    print(f"{for_terminal(str(report.version_dir.parent))}: {report.summary()}")
