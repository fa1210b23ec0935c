"""Turn records of the service's write-ahead log into a version: :func:`apply_records`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import numpy as np

from dualsearch.corpora.document import Document
from dualsearch.index.tower_match import check_writable_towers
from dualsearch.towers.contract import Encoder
from dualsearch.write.lock import IndexLock
from dualsearch.write.reindex import ReindexReport, _apply, _Change, _report, config_of
from dualsearch.write.version_writer import LiveVersion
from dualsearch.write.write_log import LogRecord


def net_changes(records: Sequence[LogRecord]) -> dict[str, Document | None]:
    """Each id the records touch, with the document its last record gives it (None: deleted).

    Example:
        >>> added = LogRecord(1, "add", (Document("a", "", "one"), Document("b", "", "two")))
        >>> {doc_id: d and d.text for doc_id, d in net_changes([added, LogRecord(2, "delete", ids=("a",))]).items()}
        {'a': None, 'b': 'two'}
    """
    final: dict[str, Document | None] = {}
    for record in records:
        final.update(record.changes())
    return final


def apply_records(index_dir: str | Path, records: Sequence[LogRecord], encoder: Encoder) -> ReindexReport:
    """Publish the net change of ``records`` (in log order) as one version holding them: a segment of
    the documents they add and deletion files for the ids they replace or delete. The segments are
    not merged here: a server merges in the background (:mod:`dualsearch.write.background_merge`).

    The writer lock is taken without waiting (:class:`~dualsearch.errors.IndexLockedError` while
    another process writes). Each record was checked when it was acknowledged; an id deleted that the
    index no longer holds (another process removed it since) is skipped.
    """
    started, index_dir = time.perf_counter(), Path(index_dir)
    final = net_changes(records)
    with IndexLock(index_dir), closing(LiveVersion(index_dir, verify=False)) as live:
        check_writable_towers(live.manifest, encoder, index_dir)
        located = live.store.lookup(final)
        leaving = np.zeros(live.segments.row_count, bool)
        leaving[[found.doc_row for found in located.values()]] = True
        documents = [document for document in final.values() if document is not None]
        deleted = sum(1 for doc_id, document in final.items() if document is None and doc_id in located)
        stats, version_dir = _apply(
            index_dir,
            live,
            _Change(documents, leaving, len(documents)),
            encoder,
            config_of(live.manifest, None),
            "",
            False,
            False,
            merge=False,
            log_sequence=records[-1].sequence,
        )
        unchanged = live.manifest.document_count - stats.counts["updated"] - deleted
    return _report(stats, deleted, unchanged, version_dir, started, [])
