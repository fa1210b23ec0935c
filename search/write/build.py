"""Build an index from a corpus: :func:`index_corpus` (validate, count, build) and :func:`build_index`.

The version itself is written by :class:`~dualsearch.write.version_writer.VersionWriter`, the same
transaction re-indexing uses (:mod:`dualsearch.write.reindex`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualsearch.corpora.document import Document
from dualsearch.corpora.records import FieldNames, InvalidHandler
from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import DualsearchError, IndexBuildError
from dualsearch.index import layout
from dualsearch.index.config import IndexConfig
from dualsearch.index.manifest import Manifest
from dualsearch.ranking.settings import SearchSettings, model_search_settings
from dualsearch.towers.contract import Encoder
from dualsearch.write.executors import Executor
from dualsearch.write.lock import IndexLock
from dualsearch.write.version_writer import LiveVersion, VersionWriter

logger = logging.getLogger(__name__)

__all__ = ["BuildReport", "IndexConfig", "build_index", "index_corpus", "validate_corpus"]


@dataclass(frozen=True)
class BuildReport:
    version_dir: Path
    document_count: int
    factory: str
    nlist: int
    default_nprobe: int
    encode_seconds: float
    index_seconds: float


def build_index(
    documents: Iterable[Document],
    index_dir: str | Path,
    encoder: Encoder,
    config: IndexConfig | None = None,
    corpus_name: str = "",
    show_progress: bool = False,
    total: int | None = None,
    executor: Executor | None = None,
    search_settings: SearchSettings | None = None,
) -> BuildReport:
    """Encode ``documents`` with the document tower and publish a new index version in ``index_dir``.

    The new version is built from scratch (centroids trained, search settings ``search_settings`` or
    the defaults with those the towers' model directory recommends, see
    :func:`~dualsearch.ranking.settings.model_search_settings`), except that over an existing index the
    vectors of documents that did not change are copied, not encoded,
    when the document tower and passage settings are the same: a model whose query tower alone was
    retrained takes over an index in seconds.

    Holds the index's writer lock. Nothing is visible until the whole version is written; on any
    error (a bad record halfway through, FAISS refusing the factory) the partial build is removed
    and the live version, if any, is untouched. Chunks encoded before a crash are reused by the
    next run. ``executor`` runs the document tower (default: in this process;
    :class:`dualsearch.write.executors.RayExecutor` on a Ray cluster).

    Example:
        >>> import tempfile
        >>> from dualsearch.corpora.sources import read_corpus
        >>> from dualsearch.testing import FakeEncoder
        >>> report = build_index(read_corpus("tiny"), Path(tempfile.mkdtemp()) / "index", FakeEncoder())
        >>> report.document_count, report.factory  # 26 documents are too few for more than one list
        (26, 'IVF1,Flat')
    """
    config = config or IndexConfig()
    index_dir = Path(index_dir)
    layout.check_writable(index_dir)
    created = not index_dir.exists()
    with IndexLock(index_dir), layout.removed_on_failure(index_dir, created), ExitStack() as stack:
        live = None if created else _reusable_live_version(index_dir)
        if live is not None:
            stack.callback(live.close)
        writer = stack.enter_context(
            VersionWriter(index_dir, encoder, config, live, search_settings or settings_for(encoder), executor)
        )
        stats = writer.write(documents, show_progress, total)
        version_dir = writer.publish(corpus_name, retrain=True)
    manifest = Manifest.read(version_dir)
    logger.info("published %s", version_dir)
    return BuildReport(
        version_dir,
        manifest.document_count,
        manifest.factory,
        manifest.nlist,
        manifest.default_nprobe,
        stats.encode_seconds,
        stats.index_seconds,
    )


def settings_for(encoder: Encoder) -> SearchSettings:
    """The engine's default search settings, with those the towers' model directory recommends."""
    return SearchSettings.from_dict(model_search_settings(encoder.identity().model))


def _reusable_live_version(index_dir: Path) -> LiveVersion | None:
    """The live version, to copy unchanged vectors from; None when there is none or it cannot be read
    (an index of an older format, a damaged one): then everything is encoded, as a rebuild should."""
    if not layout.is_index_dir(index_dir):
        return None
    try:
        return LiveVersion(index_dir)
    except DualsearchError as error:
        logger.info("not reusing vectors of the live version: %s", error)
        return None


def validate_corpus(
    source: str | Path, fields: FieldNames | None = None, skip_invalid: bool = False
) -> tuple[int, list[str]]:
    """Read a whole corpus once, before anything is encoded: returns (valid documents, skipped
    records' messages). Without ``skip_invalid`` the first bad record raises here."""
    on_invalid, skipped = invalid_record_handler(skip_invalid)
    count = sum(1 for _ in read_corpus(source, fields, on_invalid))
    log_skipped(skipped)
    return count, skipped


def invalid_record_handler(skip_invalid: bool) -> tuple[InvalidHandler | None, list[str]]:
    """What a read does with a bad record (raise: None; or note it and skip) and the notes' list."""
    skipped: list[str] = []
    return ((lambda error: skipped.append(str(error))) if skip_invalid else None), skipped


def log_skipped(skipped: list[str]) -> None:
    for message in skipped:
        logger.warning("skipping invalid record: %s", message)


def index_corpus(
    source: str | Path,
    index_dir: str | Path,
    encoder: Encoder,
    fields: FieldNames | None = None,
    config: IndexConfig | None = None,
    skip_invalid: bool = False,
    show_progress: bool = False,
    executor: Executor | None = None,
    search_settings: SearchSettings | None = None,
    build: Callable[..., Any] = build_index,
) -> tuple[BuildReport, list[str]]:
    """Validate and count a corpus, then build its index: a bad record stops the run before any
    encoding (or, with ``skip_invalid``, is skipped and reported), and progress shows time left.
    ``build`` writes the index (:func:`dualsearch.write.shard_build.index_sharded_corpus` passes the
    sharded build).

    Returns the build report and the skipped records' messages.

    Example:
        >>> import tempfile
        >>> from dualsearch.testing import FakeEncoder
        >>> report, skipped = index_corpus("tiny", Path(tempfile.mkdtemp()) / "index", FakeEncoder())
        >>> report.document_count, skipped
        (26, [])
    """
    search_settings = search_settings or settings_for(encoder)
    fields = (fields or FieldNames()).with_count(search_settings.prior_field)  # a bad prior value: file and line
    total, skipped = validate_corpus(source, fields, skip_invalid)
    if total == 0:  # before any directory is made or a progress bar drawn
        raise IndexBuildError(f"corpus {source} has no documents")
    documents = read_corpus(source, fields, (lambda error: None) if skip_invalid else None)
    report = build(
        documents,
        index_dir,
        encoder,
        config=config,
        corpus_name=str(source),
        show_progress=show_progress,
        total=total,
        executor=executor,
        search_settings=search_settings,
    )
    return report, skipped
