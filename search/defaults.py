"""Where the default index (over the embedded standard-library corpus) lives, and building it once."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from corpora.sources import DEFAULT_CORPUS
from search.layout import is_index_dir

logger = logging.getLogger(__name__)

DEFAULT_INDEX = "default"


def default_index_dir() -> Path:
    """``$DUALSEARCH_HOME/stdlib-py3.X-vN`` (default home: ``~/.cache/dualsearch``; N: the extraction
    version, so an index of older extraction code is not reused)."""
    from corpora.stdlib_docs import EXTRACTION_VERSION

    home = Path(os.environ.get("DUALSEARCH_HOME") or Path.home() / ".cache" / "dualsearch")
    return home / f"stdlib-py{sys.version_info.major}.{sys.version_info.minor}-v{EXTRACTION_VERSION}"


def resolve_index_dir(name: str | Path, show_progress: bool = False) -> Path:
    """The directory for an index argument: ``default`` means the default index, built on first use."""
    if str(name) != DEFAULT_INDEX or is_index_dir(Path(name)):
        return Path(name)
    index_dir = default_index_dir()
    if not is_index_dir(index_dir):
        from search.encoder import DualEncoder
        from search.indexer import index_corpus

        logger.info("building the default index (Python %s standard library docs) in %s", sys.version.split()[0], index_dir)
        index_corpus(DEFAULT_CORPUS, index_dir, DualEncoder.load(), show_progress=show_progress)
    return index_dir
