"""``dualsearch demo [DIR] [--port N] [--compare DIR2]``: serve the Gradio page on 127.0.0.1.

Importing this module is cheap: Gradio, torch and FAISS load only when the command runs.
"""

from __future__ import annotations

from dualsearch.cli.arguments import port
from dualsearch.defaults import DEFAULT_INDEX


def add_demo_command(commands) -> None:
    """Register ``demo`` on the ``dualsearch`` sub-command parsers.

    Example:
        >>> import argparse
        >>> commands = argparse.ArgumentParser(prog="dualsearch").add_subparsers(dest="command")
        >>> add_demo_command(commands)
        >>> commands.choices["demo"].parse_args(["my-index", "--port", "8000"]).port
        8000
    """
    parser = commands.add_parser(
        "demo",
        help="serve a search page (Gradio) on 127.0.0.1",
        description="Serve a search page on 127.0.0.1, with the /search API for gradio_client.",
    )
    parser.add_argument(
        "index_dir",
        metavar="DIR",
        nargs="?",
        default=DEFAULT_INDEX,
        help=f"index directory (default: '{DEFAULT_INDEX}', the stdlib docs index, built on first use)",
    )
    parser.add_argument("--port", type=port, default=None, help="port (default: the first free one from 7860)")
    parser.add_argument(
        "--compare",
        metavar="DIR2",
        default=None,
        help="a second index shown side by side, e.g. fine-tuned towers next to zero-shot ones",
    )
    parser.set_defaults(run=_run_demo)


def _run_demo(args) -> int:
    from dualsearch.demo.app import build_demo, examples_for, launch_demo, open_searchers

    index_dirs = [args.index_dir] + ([args.compare] if args.compare else [])
    searchers = open_searchers(index_dirs, show_progress=True)
    demo = build_demo(searchers, examples_for(next(iter(searchers.values()))))
    url = launch_demo(demo, port=args.port, block=False, quiet=True)
    print(
        f"serving {' and '.join(searchers)} on {url} (API endpoint /search for gradio_client); Ctrl+C stops", flush=True
    )
    try:
        demo.block_thread()  # returns on Ctrl+C, having closed the server
    finally:
        demo.close()
    return 0
