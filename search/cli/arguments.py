"""Argument types and option groups that several sub-commands share."""

from __future__ import annotations

import argparse
import os

from dualsearch.corpora.text import lone_surrogate_position
from dualsearch.defaults import BATCH_SIZE, MAX_NPROBE
from dualsearch.errors import InvalidInputError


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1.

    Example:
        >>> positive_int("3")
        3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def nprobe_count(text: str) -> int:
    """An argparse type: inverted lists to visit (HNSW: the search queue), 1 to :data:`MAX_NPROBE`.

    Example:
        >>> nprobe_count("16")
        16
    """
    value = positive_int(text)
    if value > MAX_NPROBE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_NPROBE:,}, got {value}")
    return value


def port(text: str, lowest: int = 1) -> int:
    """An argparse type: a TCP port number."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not lowest <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between {lowest} and 65535, got {value}")
    return value


def port_or_any(text: str) -> int:
    """An argparse type: a TCP port number, or 0 for any free port."""
    return port(text, lowest=0)


def add_field_arguments(parser: argparse.ArgumentParser) -> None:
    """``--id-field``, ``--title-field`` and ``--text-field`` for record-based corpora."""
    parser.add_argument("--id-field", default=None, help="id field of JSONL/CSV/Parquet records (default: _id or id)")
    parser.add_argument("--title-field", default="title", help="title field (default: title)")
    parser.add_argument("--text-field", default="text", help="text field (default: text)")


def add_batch_size_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch-size", type=positive_int, default=BATCH_SIZE, help=f"documents per forward pass (default {BATCH_SIZE})"
    )


# dualsearch.towers.backends.BACKENDS, without importing it
BACKEND_CHOICES = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")


def add_backend_argument(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default=None,
        help=help + "; onnx runs the towers on ONNX Runtime in fp32, onnx-int8 with int8 weights, "
        "openvino on OpenVINO (bfloat16 on CPUs that have it; pip install 'dualsearch[openvino]'), "
        "openvino-int8 on OpenVINO in int8 (towers from `dualsearch export --calibration CORPUS`)",
    )


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the document tower runs: ``--executor``, ``--ray-address``, ``--workers``, ``--threads-per-worker``."""
    group = parser.add_argument_group("encoding on a Ray cluster (pip install 'dualsearch[ray]')")
    group.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where the document tower runs: in this process (default) or on Ray actors",
    )
    group.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help="Ray cluster to use, e.g. 'auto' or HOST:6379 (default: $RAY_ADDRESS, else a new local cluster)",
    )
    group.add_argument(
        "--workers", type=positive_int, default=None, help="Ray actors (default: the cluster's CPUs / threads)"
    )
    group.add_argument(
        "--threads-per-worker", type=positive_int, default=1, help="CPUs (and encoder threads) per actor (default 1)"
    )


def executor(args: argparse.Namespace, encoder):
    """The executor :func:`add_executor_arguments`' options ask for (``dualsearch.write.executors``)."""
    from dualsearch.write.executors import make_executor

    return make_executor(args.executor, encoder, args.workers, args.threads_per_worker, args.ray_address)


def add_skip_invalid_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-invalid", action="store_true", help="skip malformed records and report each, instead of stopping"
    )


def fields(args: argparse.Namespace):
    """The :class:`FieldNames` given by :func:`add_field_arguments`' options."""
    from dualsearch.corpora.records import FieldNames

    return FieldNames(args.id_field, args.title_field, args.text_field)


def check_arguments_are_text(args: argparse.Namespace) -> None:
    """Refuse an argument holding bytes that are not UTF-8, before any work.

    Python keeps such bytes as lone surrogates (``$'caf\\xe9'`` arrives as ``'caf\\udce9'``), which no
    tokenizer, SQLite or FAISS call can encode: a query, a document id or an ``--out`` path would
    fail with a traceback, possibly after minutes of encoding.

    Example:
        >>> check_arguments_are_text(argparse.Namespace(query="caf\\udce9", k=3))
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: the query argument is not valid UTF-8: b'caf\\xe9'
    """
    for name, value in vars(args).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and lone_surrogate_position(item) is not None:
                what = name.replace("_", " ")
                raise InvalidInputError(f"the {what} argument is not valid UTF-8: {os.fsencode(item)!r}")
