"""Bring an index up to date with a changed corpus or new towers, without taking search down.

Every operation publishes a new version beside the live one and switches atomically
(:class:`~dualsearch.write.version_writer.VersionWriter`), under the index's writer lock
(:mod:`dualsearch.write.lock`). A version is a list of segments (docs/segments.md), so a write costs
what it changes:

- :func:`reindex` compares a corpus with the index by document id and content hash: new and changed
  documents are encoded into a new segment, and the changed and removed ones are deleted from their
  segments; unchanged ones are not touched.
- :func:`add_documents` adds or replaces the documents of a file as a new segment;
  :func:`delete_documents` writes deletion files only. Both keep the index's towers
  (:func:`~dualsearch.index.tower_match.check_writable_towers`): changing towers is :func:`reindex`'s job.
- :func:`optimize` merges every segment into one. Writes also merge as they go
  (:mod:`dualsearch.write.merge_policy`).

Other towers (another weights hash) re-encode everything, and other passage settings or a retrain
of the centroids rewrite everything into one segment. Retraining policy: the IVF centroids (and any
PQ/SQ codebooks) are kept while the corpus changes little, and retrained from scratch, with the
number of lists re-derived, when

1. the towers changed (the vector space moved), or
2. the vectors encoded since the last training exceed ``RETRAIN_FRACTION`` (50%) of the vectors
   it was trained on (new data may sit where the old centroids put few lists), or
3. the corpus has grown or shrunk so that its derived list count differs by 2x or more from the
   one in use, or
4. the caller asks (``retrain=True``, ``--retrain``).

The manifest records ``trained_at``, ``trained_count`` and ``added_since_training``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dualsearch.corpora.document import Document
from dualsearch.corpora.records import FieldNames, check_counts
from dualsearch.corpora.sources import read_corpus
from dualsearch.corpora.text_checks import check_doc_ids
from dualsearch.errors import CorpusError, InvalidInputError, UnknownDocumentError
from dualsearch.index import ann, layout
from dualsearch.index.config import IndexConfig
from dualsearch.index.manifest import Manifest
from dualsearch.index.passages import PassageConfig
from dualsearch.index.query_tower import save_query_tower
from dualsearch.index.shards import is_shard
from dualsearch.index.tower_match import check_writable_towers
from dualsearch.ranking.settings import SearchSettings
from dualsearch.towers.contract import Encoder
from dualsearch.write.build import invalid_record_handler, log_skipped
from dualsearch.write.checkpoints import discard_checkpoints
from dualsearch.write.corpus_diff import CorpusDiff, changed_documents, check_deletions, diff_with_live
from dualsearch.write.executors import Executor
from dualsearch.write.lock import IndexLock
from dualsearch.write.merge_policy import segments_to_merge
from dualsearch.write.version_writer import LiveVersion, VersionStats, VersionWriter

logger = logging.getLogger(__name__)
RETRAIN_FRACTION = 0.5


@dataclass(frozen=True)
class ReindexReport:
    """What a re-index did (counts are documents)."""

    added: int
    updated: int
    deleted: int
    unchanged: int
    encoded: int  # run through the document tower (or resumed from a checkpoint)
    from_checkpoint: int  # encoded by an earlier, interrupted run and reused
    retrained: bool
    seconds: float
    version_dir: Path
    skipped: list[str] = field(default_factory=list)  # invalid records skipped, with file and line
    published: bool = True  # False when nothing changed: the live version stays, no new one is written

    def summary(self) -> str:
        text = (
            f"added {self.added}, updated {self.updated}, deleted {self.deleted}, unchanged {self.unchanged} "
            f"(encoded {self.encoded}, {self.from_checkpoint} of them from an interrupted run; "
            f"centroids {'retrained' if self.retrained else 'kept'}) in {self.seconds:.1f}s"
        )
        text += f"; skipped {len(self.skipped)} invalid records" if self.skipped else ""
        return text + ("" if self.published else f"; nothing changed, {self.version_dir.name} stays live")


def retrain_reason(
    live: LiveVersion, encoder: Encoder, document_count: int, encoded: int, shared_centroids: bool = False
) -> str | None:
    """Why the centroids must be retrained for the next version, or None to keep them. Centroids a
    shard shares with the others of a sharded index are retrained only when the vectors change."""
    manifest = live.manifest
    if not manifest.vectors_reusable_by(encoder.identity()):
        return "the document tower (or its backend) changed"
    if manifest.nlist == 0 or shared_centroids:
        return None  # Flat and HNSW indexes have no centroids
    if manifest.added_since_training + encoded > RETRAIN_FRACTION * manifest.trained_count:
        return f"{manifest.added_since_training + encoded} vectors encoded since training on {manifest.trained_count}"
    derived = ann.plan_index(manifest.build.get("requested_factory"), document_count).nlist
    if max(derived, manifest.nlist) >= 2 * min(derived, manifest.nlist):
        return f"the corpus size now calls for {derived} lists instead of {manifest.nlist}"
    return None


@dataclass
class _Change:
    """What a write does to the live version: documents to write (new and changed), and live document
    rows that leave (changed, replaced or deleted)."""

    documents: Iterable[Document]
    leaving: np.ndarray  # (rows,) bool over the live version's document rows
    count: int  # documents in ``documents``: what the towers encode (the retraining policy), and progress


def _apply(
    index_dir: Path,
    live: LiveVersion,
    change: _Change,
    encoder: Encoder,
    config: IndexConfig,
    corpus_name: str,
    retrain: bool,
    show_progress: bool,
    executor: Executor | None = None,
    merge: bool = True,
    log_sequence: int | None = None,
) -> tuple[VersionStats, Path]:
    """Publish the next version after ``live``: a new segment (with any segments the merge policy
    folds in, unless ``merge`` is off: a server merges in the background) and deletions, or every
    document rewritten into one segment when the towers, the passage settings or the centroids must
    change. ``log_sequence``: the write-ahead log record the new version holds (default: the live one's)."""
    staying_count = live.manifest.document_count - int((change.leaving & live.segments.live).sum())
    after = staying_count + change.count
    shard = is_shard(index_dir)
    reason = "asked for" if retrain else retrain_reason(live, encoder, after, change.count, shard)
    rewrite = reason is not None or not live.reusable_by(encoder, config.passages.record(encoder))
    if shard and rewrite:  # one shard on centroids of its own would search other lists than the rest
        raise InvalidInputError(
            f"{index_dir} is a shard of {index_dir.parent}, whose shards share their centroids, and this write "
            f"would rewrite it alone ({reason or 'the passage settings changed'}): rebuild the sharded index "
            "instead (`dualsearch index CORPUS --out NEW_DIR --shards N`)"
        )
    with VersionWriter(index_dir, encoder, config, live, executor=executor) as writer:
        writer.log_sequence = log_sequence
        if rewrite:
            if reason:
                logger.info("retraining the centroids: %s", reason)
            staying = live.segments.iter_documents(skip=change.leaving)
            writer.write(_chain(staying, change.documents), show_progress, after)
            version_dir = writer.publish(corpus_name, retrain=reason is not None)
        else:
            merged = _merged_segments(live, change.leaving, change.count) if merge else []
            folded = np.zeros_like(change.leaving)
            for position in merged:
                folded[live.segments.rows_of(position)] = True
            not_moving = change.leaving | ~folded
            moving = live.segments.iter_documents(skip=not_moving)  # rewritten, vectors kept
            moved = int((live.segments.live & ~not_moving).sum())
            writer.write(_chain(change.documents, moving), show_progress, change.count + moved)
            leaving = np.flatnonzero((change.leaving | folded) & live.segments.live)
            version_dir = writer.publish(corpus_name, retrain=False, deleted_rows=leaving)
            if merged:
                logger.info("merged %d segments into the new one", len(merged))
    return writer.stats, version_dir


def _merged_segments(live: LiveVersion, leaving: np.ndarray, new_documents: int) -> list[int]:
    segments = live.segments
    live_counts, rows = [], []
    for number, segment in enumerate(segments.segments):
        its_rows = segments.rows_of(number)
        live_counts.append(int((segments.live[its_rows] & ~leaving[its_rows]).sum()))
        rows.append(segment.document_count)
    return segments_to_merge(live_counts, rows, new_documents)


def _report(
    stats: VersionStats, deleted: int, unchanged: int, version_dir: Path, started: float, skipped: list[str]
) -> ReindexReport:
    return ReindexReport(
        stats.counts["added"],
        stats.counts["updated"],
        deleted,
        unchanged,
        stats.encoded,
        stats.from_checkpoint,
        stats.retrained,
        time.perf_counter() - started,
        version_dir,
        skipped,
    )


def config_of(manifest: Manifest, config: IndexConfig | None) -> IndexConfig:
    """The given config, or the settings the index was built with (a manifest written before a setting
    was recorded gives that setting's default)."""
    if config is not None:
        return config
    build, defaults = manifest.build, IndexConfig()
    passages = PassageConfig.from_record(manifest.passages)
    return IndexConfig(
        factory=build.get("requested_factory"),
        chunk_size=build.get("chunk_size", defaults.chunk_size),
        seed=build.get("seed", defaults.seed),
        nprobe_target=build.get("nprobe_target", defaults.nprobe_target),
        calibration_queries=build.get("calibration_queries", defaults.calibration_queries),
        passage_window=passages.window,
        passage_stride=passages.stride,
        max_passages=passages.max_passages,
        lead_passage=passages.lead,
        filter_fields=tuple(manifest.filter_fields),
        on_disk=manifest.on_disk,
    )


def reindex(
    index_dir: str | Path,
    corpus: str | Path,
    encoder: Encoder,
    fields: FieldNames | None = None,
    config: IndexConfig | None = None,
    skip_invalid: bool = False,
    retrain: bool = False,
    show_progress: bool = False,
    allow_mass_delete: bool = False,
    executor: Executor | None = None,
    owned: Callable[[str], bool] | None = None,
) -> ReindexReport:
    """Make the index hold exactly the documents of ``corpus`` (any form :func:`read_corpus` takes), or
    of those whose id ``owned`` accepts (a shard's share of a sharded index's corpus).

    The corpus is read twice. The first pass validates it, counts it and compares it with the index,
    before anything is encoded: a bad record stops the run (unless ``skip_invalid``), and so does
    deleting more than :data:`~dualsearch.defaults.MAX_DELETE_SHARE` of the index (unless
    ``allow_mass_delete``); a corpus that changes nothing publishes no new version. The second pass
    builds the new version, its document tower run by ``executor`` (default: in this process).

    Example:
        >>> report = reindex("my-index", "docs.jsonl", DualEncoder.load())  # doctest: +SKIP
        >>> print(report.summary())  # doctest: +SKIP
        added 12, updated 3, deleted 1, unchanged 4980 (encoded 15, ...) in 2.1s
    """
    started, index_dir, fields = time.perf_counter(), Path(index_dir), fields or FieldNames()
    with IndexLock(index_dir):
        on_invalid, skipped = invalid_record_handler(skip_invalid)
        with closing(LiveVersion(index_dir)) as live:
            fields = fields.with_count(_prior_field(live))
            # one pass validates, counts and compares the corpus with the index, before anything is encoded
            unchanged_rows = np.zeros(live.segments.row_count, bool)
            diff = diff_with_live(
                live.store,
                live.manifest.document_count,
                _owned(read_corpus(str(corpus), fields, on_invalid), owned),
                unchanged_rows,
            )
            log_skipped(skipped)
            check_deletions(diff, str(corpus), allow_mass_delete)
            if diff.changes_nothing and not retrain and config is None and _same_towers(live, encoder):
                # the live version is complete: what a killed writer left behind is of no use any more
                layout.remove_stale_builds(index_dir)
                discard_checkpoints(index_dir)
                save_query_tower(index_dir, encoder)  # an index older than the light query path gains it
                return _unchanged_report(diff, live.version_dir, started, skipped)
            corpus_documents = _owned(read_corpus(str(corpus), fields, _ignore if skip_invalid else None), owned)
            changed = diff.total - diff.unchanged
            change = _Change(
                changed_documents(live.store, corpus_documents), live.segments.live & ~unchanged_rows, changed
            )
            stats, version_dir = _apply(
                index_dir,
                live,
                change,
                encoder,
                config_of(live.manifest, config),
                str(corpus),
                retrain,
                show_progress,
                executor,
            )
    report = _report(stats, diff.deleted, diff.unchanged, version_dir, started, skipped)
    logger.info("re-indexed %s: %s", index_dir, report.summary())
    return report


def _owned(documents: Iterable[Document], owned: Callable[[str], bool] | None) -> Iterable[Document]:
    return documents if owned is None else (document for document in documents if owned(document.id))


def _prior_field(live: LiveVersion) -> str | None:
    """The index's prior field: what a document written to it must hold there is a count."""
    return SearchSettings.from_dict(live.manifest.search).prior_field


def _same_towers(live: LiveVersion, encoder: Encoder) -> bool:
    """Both towers are the ones that built the live version (a new query tower alone needs a new version,
    though every vector is reused)."""
    identity = encoder.identity()
    return not live.manifest.differing_towers(identity) and live.manifest.vectors_reusable_by(identity)


def _ignore(error: CorpusError) -> None:
    """An ``on_invalid`` handler for a corpus whose invalid records were already reported."""


def _unchanged_report(diff: CorpusDiff, version_dir: Path, started: float, skipped: list[str]) -> ReindexReport:
    seconds = time.perf_counter() - started
    return ReindexReport(0, 0, 0, diff.unchanged, 0, 0, False, seconds, version_dir, skipped, published=False)


def add_documents(
    index_dir: str | Path,
    source: str | Path | Sequence[Document],
    encoder: Encoder,
    fields: FieldNames | None = None,
    skip_invalid: bool = False,
    show_progress: bool = False,
) -> ReindexReport:
    """Add the documents of ``source`` (a corpus in any form :func:`read_corpus` takes, or a list of
    :class:`Document`) to the index, replacing any with the same id."""
    started, index_dir, fields = time.perf_counter(), Path(index_dir), fields or FieldNames()
    with IndexLock(index_dir), closing(LiveVersion(index_dir, verify=False)) as live:
        skipped: list[str] = []
        fields = fields.with_count(_prior_field(live))
        if isinstance(source, (str, Path)):
            new = list(read_corpus(str(source), fields, skipped.append if skip_invalid else None))  # small, by intent
        else:
            new = list(source)
            for number, document in enumerate(new, 1):  # before anything is encoded
                check_counts(document, fields.counts, f"document {number}")
        if not new:
            raise CorpusError(f"{source if isinstance(source, (str, Path)) else 'the request'}: no documents to add")
        check_writable_towers(live.manifest, encoder, index_dir)  # after the input: it may load the towers
        replaced = live.store.lookup(document.id for document in new)
        leaving = np.zeros(live.segments.row_count, bool)
        leaving[[located.doc_row for located in replaced.values()]] = True
        stats, version_dir = _apply(
            index_dir,
            live,
            _Change(new, leaving, len(new)),
            encoder,
            config_of(live.manifest, None),
            "",
            False,
            show_progress,
        )
        unchanged = live.manifest.document_count - stats.counts["updated"]
    return _report(stats, 0, unchanged, version_dir, started, [str(e) for e in skipped])


def delete_documents(
    index_dir: str | Path, doc_ids: Iterable[str], encoder: Encoder, show_progress: bool = False
) -> ReindexReport:
    """Remove documents by id; an id the index does not hold is an error (nothing is changed)."""
    started, index_dir, doc_ids = time.perf_counter(), Path(index_dir), check_doc_ids(doc_ids)
    if not doc_ids:
        raise InvalidInputError("no document ids given")
    with IndexLock(index_dir), closing(LiveVersion(index_dir, verify=False)) as live:
        unknown = sorted(doc_ids - set(live.store.lookup(doc_ids)))
        if unknown:
            raise UnknownDocumentError(f"{index_dir} holds no document with id {', '.join(map(repr, unknown[:5]))}")
        if len(doc_ids) >= live.manifest.document_count:
            raise InvalidInputError(
                f"deleting {'it' if len(doc_ids) == 1 else 'them'} would leave {index_dir} with no document; an index "
                "holds at least one (to drop the whole index, remove its directory)"
            )
        check_writable_towers(live.manifest, encoder, index_dir)  # after the input: it may load the towers
        leaving = np.zeros(live.segments.row_count, bool)
        leaving[[located.doc_row for located in live.store.lookup(doc_ids).values()]] = True
        stats, version_dir = _apply(
            index_dir,
            live,
            _Change([], leaving, 0),
            encoder,
            config_of(live.manifest, None),
            "",
            False,
            show_progress,
        )
    return _report(stats, len(doc_ids), live.manifest.document_count - len(doc_ids), version_dir, started, [])


def optimize(index_dir: str | Path, encoder: Encoder, show_progress: bool = False) -> ReindexReport:
    """Merge every segment of the index into one, dropping its deleted rows: vectors are copied, not
    encoded, and the centroids are kept. An index of one segment without deletions is left as it is."""
    started, index_dir = time.perf_counter(), Path(index_dir)
    with IndexLock(index_dir), closing(LiveVersion(index_dir)) as live:
        count = live.manifest.document_count
        if len(live.entries) == 1 and not live.entries[0].deleted_count:
            return ReindexReport(
                0, 0, 0, count, 0, 0, False, time.perf_counter() - started, live.version_dir, published=False
            )
        config = config_of(live.manifest, None)
        with VersionWriter(index_dir, encoder, config, live) as writer:
            writer.write(live.segments.iter_documents(), show_progress, count)
            version_dir = writer.publish("", retrain=False)
    return _report(writer.stats, 0, count, version_dir, started, [])


def _chain(*parts: Iterable[Document]) -> Iterator[Document]:
    for part in parts:
        yield from part
