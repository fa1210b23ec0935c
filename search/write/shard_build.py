"""Build a sharded index: :func:`build_sharded_index`.

Every shard is searched with the same trained centroids and the same ``nprobe``, so a query visits
the same inverted lists in every shard that one index of the whole corpus would visit, and the merged
top-k is that index's top-k (:mod:`dualsearch.read.sharded`). Centroids trained per shard would each
fit their own shard, and an approximate search would then visit other vectors than one index does.

So the build encodes and trains once, as one index, in a staging directory beside the shards
(:func:`dualsearch.write.build.build_index`: chunks checkpointed, a Ray executor if given), then
writes each shard from it: the shard's documents, their vectors copied (nothing is encoded twice),
indexed on the staging index's centroids. The staging index is removed at the end. It costs one more
write of the vectors, not one more encoding.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from dualsearch.corpora.document import Document
from dualsearch.errors import IndexBuildError, InvalidInputError
from dualsearch.index.config import IndexConfig
from dualsearch.index.shards import ShardMap, is_sharded, shard_name, shard_of
from dualsearch.ranking.settings import SearchSettings
from dualsearch.towers.contract import Encoder
from dualsearch.write.build import build_index, index_corpus, settings_for
from dualsearch.write.executors import Executor
from dualsearch.write.lock import IndexLock
from dualsearch.write.reindex import config_of
from dualsearch.write.version_writer import LiveVersion, VersionWriter

logger = logging.getLogger(__name__)
STAGING_NAME = ".staging"  # the one-index build the shards are written from


@dataclass(frozen=True)
class ShardedBuildReport:
    index_dir: Path
    shards: list[int]  # documents in each shard
    factory: str
    nlist: int
    default_nprobe: int
    encode_seconds: float
    index_seconds: float  # the staging index's, and the shards' writing

    @property
    def document_count(self) -> int:
        return sum(self.shards)


def build_sharded_index(
    documents: Iterable[Document],
    index_dir: str | Path,
    encoder: Encoder,
    shards: int,
    config: IndexConfig | None = None,
    corpus_name: str = "",
    show_progress: bool = False,
    total: int | None = None,
    executor: Executor | None = None,
    search_settings: SearchSettings | None = None,
) -> ShardedBuildReport:
    """Encode ``documents`` and write them as ``shards`` indexes under ``index_dir`` (a new directory),
    each document in shard :func:`~dualsearch.index.shards.shard_of` its id.

    Raises:
        InvalidInputError: fewer than 2 shards, or ``index_dir`` exists and is not empty.
        IndexBuildError: a shard would get no document (fewer documents than shards, in effect).
    """
    index_dir = _new_sharded_dir(index_dir, shards)
    staging = index_dir / STAGING_NAME
    started = time.perf_counter()
    try:
        report = build_index(
            documents,
            staging,
            encoder,
            config,
            corpus_name,
            show_progress,
            total,
            executor,
            search_settings or settings_for(encoder),
        )
        counts = _write_shards(staging, index_dir, encoder, shards, config or IndexConfig(), corpus_name)
    except BaseException:
        shutil.rmtree(index_dir, ignore_errors=True)  # the directory was new or empty: nothing else was there
        raise
    shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote %d shards in %s: %s documents", shards, index_dir, counts)
    seconds = time.perf_counter() - started
    return ShardedBuildReport(
        index_dir,
        counts,
        report.factory,
        report.nlist,
        report.default_nprobe,
        report.encode_seconds,
        seconds - report.encode_seconds,
    )


def split_index(source_dir: str | Path, index_dir: str | Path, encoder: Encoder, shards: int) -> list[int]:
    """Write the live documents of the index ``source_dir`` as a new sharded index ``index_dir``, on its
    centroids, with its nprobe and settings: nothing is encoded, and the source is left as it is.
    ``encoder``: the towers that built it. Returns the documents in each shard."""
    index_dir = _new_sharded_dir(index_dir, shards)
    try:
        with closing(LiveVersion(source_dir)) as live:
            config = config_of(live.manifest, None)
        return _write_shards(Path(source_dir), index_dir, encoder, shards, config, "")
    except BaseException:
        shutil.rmtree(index_dir, ignore_errors=True)
        raise


def _new_sharded_dir(index_dir: str | Path, shards: int) -> Path:
    """``index_dir``, made if missing, once the shard count and the directory are known to be usable."""
    index_dir = Path(index_dir)
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 2:
        raise InvalidInputError(f"a sharded index needs at least 2 shards, got {shards!r}")
    if index_dir.exists() and any(index_dir.iterdir()):
        what = "a sharded index" if is_sharded(index_dir) else "not empty"
        raise InvalidInputError(f"{index_dir} is {what}: build a sharded index into a new directory")
    index_dir.mkdir(parents=True, exist_ok=True)
    return index_dir


def index_sharded_corpus(
    source: str | Path, index_dir: str | Path, encoder: Encoder, shards: int, **options: Any
) -> tuple[ShardedBuildReport, list[str]]:
    """:func:`~dualsearch.write.build.index_corpus` (validate, count, then build) into ``shards`` shards."""
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 2:  # before the corpus is read
        raise InvalidInputError(f"a sharded index needs at least 2 shards, got {shards!r}")
    return index_corpus(source, index_dir, encoder, build=partial(build_sharded_index, shards=shards), **options)


def _write_shards(
    staging: Path, index_dir: Path, encoder: Encoder, shards: int, config: IndexConfig, corpus_name: str
) -> list[int]:
    """Write each shard from the staging index (its documents, their vectors, its centroids), then the
    shard map, last: a directory without one is no sharded index."""
    live = LiveVersion(staging)
    try:
        owners = [shard_of(document.id, shards) for document in live.store.iter_documents()]
        tally = Counter(owners)
        counts = [tally[number] for number in range(shards)]
        if not all(counts):
            empty = [number for number, count in enumerate(counts) if not count]
            raise IndexBuildError(f"{len(owners)} documents leave shards {empty} of {shards} empty: use fewer shards")
        settings = SearchSettings.from_dict(live.manifest.search)
        for number in range(shards):
            shard_dir = index_dir / shard_name(number)
            mine = (document for document, owner in zip(live.store.iter_documents(), owners) if owner == number)
            writer = VersionWriter(
                shard_dir, encoder, config, live, settings, calibrated_nprobe=live.manifest.default_nprobe
            )
            with IndexLock(shard_dir), writer:
                stats = writer.write(mine)
                writer.publish(corpus_name, retrain=False)  # on the staging index's centroids
            if stats.encoded:
                raise IndexBuildError(f"{shard_dir}: {stats.encoded} documents were encoded again")
        ShardMap(
            shards=[shard_name(number) for number in range(shards)],
            model=live.manifest.model,
            default_nprobe=live.manifest.default_nprobe,
            search=live.manifest.search,
        ).write(index_dir)
    finally:
        live.close()
    return counts
