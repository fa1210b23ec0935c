"""Merges beside the writers: :func:`merge_due`, as ``dualsearch serve`` runs them.

A server's writes add a segment each and merge nothing (:mod:`dualsearch.service.writes`), so a
write is never held up by a merge. A merge thread then folds what the tiered policy says is due
(:func:`~dualsearch.write.merge_policy.segments_due`) into one segment: it builds the segment from
the version live when it starts, without the writer lock (vectors are copied, nothing is encoded), and
takes the lock only to publish. Documents deleted from the merged segments meanwhile are deleted from
the new one, so writes published during the merge are kept; if a segment it merged has gone (an
``optimize`` or a rewrite took it), nothing is published.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, closing
from pathlib import Path

import numpy as np

from dualsearch.errors import IndexLockedError
from dualsearch.towers.contract import Encoder
from dualsearch.write.lock import IndexLock
from dualsearch.write.merge_policy import segments_due
from dualsearch.write.reindex import config_of
from dualsearch.write.version_writer import LiveVersion, VersionWriter

logger = logging.getLogger(__name__)
LOCK_WAIT_SECONDS = 30.0  # how long a finished merge waits for the writer lock before it is given up


def merge_due(
    index_dir: str | Path,
    encoder: Encoder,
    lock: Callable[[], AbstractContextManager] | None = None,
    lock_wait: float = LOCK_WAIT_SECONDS,
) -> Path | None:
    """Merge the segments due for a merge in the live version of ``index_dir``; returns the version
    published, or None when nothing was due or the merge was given up (its segments changed, or the
    writer lock stayed busy for ``lock_wait`` seconds).

    ``lock`` makes the context that holds the writer lock while publishing (default:
    :class:`~dualsearch.write.lock.IndexLock`; the service passes one that tells its own writers).
    """
    index_dir = Path(index_dir)
    lock = lock or (lambda: IndexLock(index_dir))
    with closing(LiveVersion(index_dir)) as base:  # copied vectors must be the recorded ones: verified
        segments = base.segments
        live_counts = [int(segments.live[segments.rows_of(number)].sum()) for number in range(len(base.entries))]
        positions = segments_due(live_counts, [s.document_count for s in segments.segments])
        config = config_of(base.manifest, None)
        if not positions or not base.reusable_by(encoder, config.passages.record(encoder)):
            return None  # nothing due, or towers that would encode again what a merge only copies
        chosen = np.zeros(segments.row_count, bool)
        for position in positions:
            chosen[segments.rows_of(position)] = True
        base_rows = np.flatnonzero(chosen & segments.live)
        names = [base.entries[position].name for position in positions]
        started = time.perf_counter()
        with VersionWriter(index_dir, encoder, config, base, background=True) as writer:
            writer.write(segments.iter_documents(skip=~chosen), total=len(base_rows))
            _, _, files = writer.index_segment()
            with _held(lock, lock_wait), closing(LiveVersion(index_dir, verify=False)) as current:
                version_dir = writer.publish_merge(current, names, base_rows, files)
    if version_dir is None:
        logger.info("%s: a merge of %s was given up: the segments changed meanwhile", index_dir, ", ".join(names))
    else:
        logger.info(
            "%s: merged %d segments (%d documents) in %.1fs: %s",
            index_dir,
            len(names),
            len(base_rows),
            time.perf_counter() - started,
            version_dir.name,
        )
    return version_dir


class _held(AbstractContextManager):
    """Hold ``lock()``, trying again while another writer has it, for up to ``seconds``."""

    def __init__(self, lock: Callable[[], AbstractContextManager], seconds: float) -> None:
        self.lock, self.seconds, self.held = lock, seconds, None

    def __enter__(self):
        deadline = time.monotonic() + self.seconds
        while True:
            held = self.lock()
            try:
                held.__enter__()
            except IndexLockedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
                continue
            self.held = held
            return held

    def __exit__(self, *exc_info):
        return self.held.__exit__(*exc_info)
