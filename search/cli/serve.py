"""``dualsearch serve [DIR] [--host H] [--port N] [--token-file F]``: the HTTP service.

Importing this module is cheap: FastAPI, uvicorn, torch and FAISS load only when the command runs.
"""

from __future__ import annotations

from dualsearch.cli.arguments import add_backend_argument, port_or_any, positive_int
from dualsearch.defaults import DEFAULT_INDEX, REFRESH_SECONDS, SHARD_SECONDS

DEFAULT_PORT = 8000


def add_serve_command(commands) -> None:
    """Register ``serve`` on the ``dualsearch`` sub-command parsers.

    Example:
        >>> import argparse
        >>> commands = argparse.ArgumentParser(prog="dualsearch").add_subparsers(dest="command")
        >>> add_serve_command(commands)
        >>> commands.choices["serve"].parse_args(["my-index", "--port", "0"]).port
        0
    """
    parser = commands.add_parser(
        "serve",
        help="serve an index over HTTP (JSON API, OpenAPI docs at /docs)",
        description="Serve an index over HTTP: search, documents, health and stats, with OpenAPI docs at /docs. "
        "Reads are open on loopback; writes (POST/DELETE /documents) need the bearer token, and listening "
        "beyond loopback needs one for everything. A re-index by any process is picked up without a restart.",
    )
    parser.add_argument(
        "index_dir",
        metavar="DIR",
        nargs="?",
        default=DEFAULT_INDEX,
        help=f"index directory (default: '{DEFAULT_INDEX}', the stdlib docs index, built on first use); "
        "it may not exist yet: the service answers 503 until an index is published there",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_or_any, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0: any free one)"
    )
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        default=None,
        help="file holding the bearer token (default: $DUALSEARCH_TOKEN; without either, writes are refused)",
    )
    parser.add_argument("--model", default=None, help="query/document towers (default: those that built the index)")
    add_backend_argument(parser, "what runs --model's towers (default: what encoded the index's documents)")
    parser.add_argument(
        "--no-micro-batching",
        dest="micro_batching",
        action="store_false",
        help="encode each request's queries on their own (default: concurrent requests share forward passes)",
    )
    parser.add_argument(
        "--refresh-seconds",
        type=_seconds,
        default=REFRESH_SECONDS,
        metavar="S",
        help="how often acknowledged writes become searchable (default: %(default)s; 0: after each write). "
        "A write is answered once it is in the write-ahead log; ?wait=true answers once it is searchable",
    )
    parser.add_argument(
        "--ray",
        action="store_true",
        help="serve a sharded index on Ray Serve: a deployment per shard, and an ingress that fans each "
        "query out and merges (docs/sharding.md; pip install 'dualsearch[ray]')",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="the Ray cluster to join (default: $RAY_ADDRESS, else a new one)",
    )
    parser.add_argument(
        "--replicas", type=positive_int, default=1, metavar="R", help="with --ray: replicas of each shard (default: 1)"
    )
    parser.add_argument(
        "--shard-timeout",
        type=_seconds,
        default=SHARD_SECONDS,
        metavar="S",
        help="with --ray: how long a search waits for a shard before answering 503 naming it, or going on "
        "without it when the request asks for partial results (default: %(default)s)",
    )
    parser.set_defaults(run=_run_serve)


def _serve_on_ray(args, token: str | None) -> int:
    """A sharded index on Ray Serve, until Ctrl+C."""
    import time

    from dualsearch.errors import InvalidInputError, require
    from dualsearch.index.shards import is_sharded
    from dualsearch.service.app import ServiceSettings
    from dualsearch.service.ray_serving import serve_on_ray, stop_serving

    if not args.ray:
        raise InvalidInputError(f"{args.index_dir} is a sharded index: serve it with --ray (docs/sharding.md)")
    if not is_sharded(args.index_dir):
        raise InvalidInputError(f"--ray serves a sharded index; {args.index_dir} is none (dualsearch index --shards N)")
    if args.model:
        raise InvalidInputError("--ray serves the towers that built the shards: --model does not apply")
    require("ray.serve", "ray", "--ray")
    settings = ServiceSettings.for_bind(args.host, token)
    if args.shard_timeout <= 0:
        raise InvalidInputError("--shard-timeout must be more than 0 seconds")
    url = serve_on_ray(
        args.index_dir, args.host, args.port, settings, args.replicas, args.ray_address, args.shard_timeout
    )
    print(f"serving {args.index_dir} on {url} with Ray Serve ({args.replicas} replicas a shard); Ctrl+C stops",
          flush=True)  # fmt: skip
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        stop_serving()
    return 0


def _seconds(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more seconds")
    return value


def _run_serve(args) -> int:
    from dualsearch.index.shards import is_sharded
    from dualsearch.profiles.stdlib import resolve_index_dir
    from dualsearch.read.live_index import LiveIndex
    from dualsearch.service.app import ServiceSettings, create_app
    from dualsearch.service.auth import check_bind, read_token
    from dualsearch.service.server import Server

    token = read_token(args.token_file)
    check_bind(args.host, token)  # before minutes of loading towers
    if args.ray or is_sharded(args.index_dir):
        return _serve_on_ray(args, token)

    def load_encoder(manifest):
        from dualsearch.index.query_tower import index_encoder
        from dualsearch.towers.backends import load_encoder
        from dualsearch.towers.micro_batching import BatchingEncoder

        if args.model:
            encoder = load_encoder(args.model, args.backend or manifest.document_backend)
        else:  # the index's own query tower; the document tower is loaded by the first write
            encoder = index_encoder(index_dir, manifest)
        return BatchingEncoder(encoder) if args.micro_batching else encoder

    index_dir = resolve_index_dir(args.index_dir, show_progress=True)
    checked = _refuse_what_can_never_be_served(index_dir, load_encoder if args.model else None)
    log_fatal_signals()
    # --model fixes the towers; without it the server follows the index's (a reindex --model moves them)
    live = LiveIndex(index_dir, lambda manifest: checked or load_encoder(manifest), follow_towers=not args.model)
    settings = ServiceSettings.for_bind(args.host, token, refresh_seconds=args.refresh_seconds)
    server = Server(create_app(live, settings), args.host, args.port, token)
    served = str(index_dir) if live.available else f"{index_dir}: no index yet (503 until one is published)"
    writes = "writes need the token" if token else "writes refused (no token)"
    print(f"serving {served} on {server.url} (API docs at {server.url}/docs; {writes}); Ctrl+C stops", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn has shut down cleanly, then re-raised the Ctrl+C it caught
        print("stopped", flush=True)
    finally:
        live.close()
    return 0


def _refuse_what_can_never_be_served(index_dir, load_encoder):
    """Stop at start, rather than answer 503 for ever, on a path no publish can make an index (a file, a
    directory of other files), and on ``--model`` towers the index was not built for: the towers are
    fixed for the server's life. A directory that does not exist yet, or is empty, waits for a publish.
    Returns the ``--model`` towers once checked (None when there was nothing to check them against)."""
    from pathlib import Path

    from dualsearch.errors import IndexNotFoundError
    from dualsearch.index import layout
    from dualsearch.index.manifest import Manifest
    from dualsearch.read.searcher import check_towers

    index_dir = Path(index_dir)
    if index_dir.exists() and not index_dir.is_dir():
        raise IndexNotFoundError(f"{index_dir} is a file, not an index directory")
    if layout.holds_something_else(index_dir):
        raise IndexNotFoundError(
            f"{index_dir} is not a dualsearch index and holds other files: no index can be published there. "
            "Serve an index directory, or a new or empty one to wait for a first publish"
        )
    if load_encoder is not None and layout.is_index_dir(index_dir):
        manifest = Manifest.read(layout.current_version_dir(index_dir))
        encoder = load_encoder(manifest)
        check_towers(manifest, encoder, index_dir)
        return encoder
    return None


def log_fatal_signals() -> None:
    """Print every thread's Python stack on stderr if the process dies of a fatal signal. A published
    file changed in place under its memory map (``index.ivfdata``, ``vectors.f32``) kills the server by
    SIGBUS, which no exception handler sees: this leaves ``Fatal Python error: Bus error`` and the
    search that touched it in the log instead of nothing."""
    import faulthandler
    import sys

    stream = sys.__stderr__  # the process's own stderr, wherever sys.stderr was pointed since
    if stream is not None:
        faulthandler.enable(file=stream, all_threads=True)
