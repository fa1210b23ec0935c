"""Test helper: serve the demo on a free 127.0.0.1 port in a background thread."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import pytest

from dualsearch.read.searcher import Searcher

# Gradio's queue calls pandas with arguments pandas 3 deprecates: not ours to fix.
GRADIO_NOISE = pytest.mark.filterwarnings("ignore:::gradio.queueing")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served_demo(searchers: Mapping[str, Searcher], examples: Sequence[str] = ()) -> Iterator[str]:
    """Build and launch the demo (no network, no analytics); yields its URL and closes it afterwards."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from dualsearch.demo.app import build_demo, launch_demo

    demo = build_demo(searchers, examples)
    url = launch_demo(demo, port=free_port(), block=False, quiet=True)
    try:
        yield url
    finally:
        demo.close()
