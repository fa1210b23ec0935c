"""The ``dualsearch`` command, the composition root: it sits above every package and wires their
sub-commands together. Each handler builds a config, calls one library function and prints.

Errors of the :class:`~dualsearch.errors.DualsearchError` hierarchy, and those the operating system
raises (a full disk, a refused file), print one line on stderr and exit 1; Ctrl+C exits 130.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from dualsearch.cli.arguments import check_arguments_are_text
from dualsearch.cli.demo import add_demo_command
from dualsearch.cli.engine import add_evaluate_command, add_index_command, add_search_command
from dualsearch.cli.export import add_export_command
from dualsearch.cli.finetune import add_finetune_command
from dualsearch.cli.serve import add_serve_command
from dualsearch.cli.terminal import for_terminal
from dualsearch.cli.update import (
    add_add_command,
    add_delete_command,
    add_optimize_command,
    add_reindex_command,
    add_upgrade_command,
)
from dualsearch.errors import DualsearchError
from dualsearch.version import __version__

logger = logging.getLogger(__name__)
EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 130

COMMANDS: list[Callable] = [
    add_index_command,
    add_search_command,
    add_evaluate_command,
    add_reindex_command,
    add_add_command,
    add_delete_command,
    add_optimize_command,
    add_upgrade_command,
    add_demo_command,
    add_serve_command,
    add_finetune_command,
    add_export_command,
]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every sub-command (building it imports nothing heavy).

    Example:
        >>> build_parser().parse_args(["search", "my-index", "green tea", "-k", "3"]).k
        3
    """
    parser = argparse.ArgumentParser(prog="dualsearch", description="Semantic search on query and document towers.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details (and tracebacks of errors)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(commands)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # it narrates its CPU feature probing
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG on import


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dualsearch`` with ``argv`` (default: the process arguments); returns the exit code."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        check_arguments_are_text(args)
        return args.run(args)
    except (DualsearchError, OSError) as error:  # OSError: a disk full or a file the system refused us
        if args.verbose:
            logger.exception("failed")
        print(f"dualsearch: error: {for_terminal(str(error))}", file=sys.stderr)  # one line, whatever it quotes
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("dualsearch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
