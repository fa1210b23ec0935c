"""Writes to a sharded index, each routed to the shard that owns the document's id.

Every shard's write is one transaction of that shard (:mod:`dualsearch.write.reindex`), on the
centroids every shard shares. A write that spans shards checks its input against all of them first
(unknown ids, a shard it would empty), so a bad request changes nothing; once the checks pass, the
shards publish one after another, and a search that runs meanwhile may see the new documents of
one shard before another's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from dualsearch.corpora.document import Document
from dualsearch.corpora.records import FieldNames
from dualsearch.corpora.sources import read_corpus
from dualsearch.corpora.text_checks import check_doc_ids
from dualsearch.errors import CorpusError, InvalidInputError, UnknownDocumentError
from dualsearch.index import layout
from dualsearch.index.manifest import Manifest
from dualsearch.index.shards import ShardMap, shard_of
from dualsearch.towers.contract import Encoder
from dualsearch.write.executors import Executor
from dualsearch.write.reindex import ReindexReport, add_documents, delete_documents, reindex
from dualsearch.write.version_writer import LiveVersion


def add_to_shards(
    index_dir: str | Path,
    source: str | Path | Sequence[Document],
    encoder: Encoder,
    fields: FieldNames | None = None,
    skip_invalid: bool = False,
    show_progress: bool = False,
) -> ReindexReport:
    """Add (or replace) documents, each in the shard its id routes to."""
    started, shard_map = time.perf_counter(), ShardMap.read(index_dir)
    skipped: list[str] = []
    if isinstance(source, (str, Path)):
        documents = list(read_corpus(str(source), fields, (lambda e: skipped.append(str(e))) if skip_invalid else None))
    else:
        documents = list(source)
    if not documents:
        raise CorpusError(f"{source if isinstance(source, (str, Path)) else 'the request'}: no documents to add")
    reports = []
    for number, directory in enumerate(shard_map.shard_dirs(index_dir)):
        mine = [document for document in documents if shard_of(document.id, shard_map.count) == number]
        if mine:
            reports.append(add_documents(directory, mine, encoder, fields, show_progress=show_progress))
    return _combined(reports, index_dir, shard_map, started, skipped)


def delete_from_shards(
    index_dir: str | Path, doc_ids: Iterable[str], encoder: Encoder, show_progress: bool = False
) -> ReindexReport:
    """Remove documents by id from the shards that hold them; an unknown id, or a deletion that would
    empty a shard, changes nothing anywhere."""
    started, shard_map, doc_ids = time.perf_counter(), ShardMap.read(index_dir), check_doc_ids(doc_ids)
    if not doc_ids:
        raise InvalidInputError("no document ids given")
    routed: dict[int, list[str]] = {}
    for doc_id in sorted(doc_ids):
        routed.setdefault(shard_of(doc_id, shard_map.count), []).append(doc_id)
    directories = shard_map.shard_dirs(index_dir)
    for number, ids in routed.items():  # every check before the first shard changes
        with closing(LiveVersion(directories[number], verify=False)) as live:
            unknown = sorted(set(ids) - set(live.store.lookup(ids)))
            if unknown:
                raise UnknownDocumentError(f"{index_dir} holds no document with id {', '.join(map(repr, unknown[:5]))}")
            if len(ids) >= live.manifest.document_count:
                raise InvalidInputError(
                    f"deleting them would leave shard {shard_map.shards[number]} of {index_dir} with no document; "
                    "a shard holds at least one"
                )
    reports = [
        delete_documents(directories[number], ids, encoder, show_progress=show_progress)
        for number, ids in sorted(routed.items())
    ]
    return _combined(reports, index_dir, shard_map, started, [])


def reindex_shards(
    index_dir: str | Path,
    corpus: str | Path,
    encoder: Encoder,
    fields: FieldNames | None = None,
    skip_invalid: bool = False,
    show_progress: bool = False,
    allow_mass_delete: bool = False,
    executor: Executor | None = None,
) -> ReindexReport:
    """Make the sharded index hold exactly the documents of ``corpus``: each shard is re-indexed with
    the documents its ids route to (the corpus is read twice per shard). A bad record stops the run at
    the first shard, before anything is written. New towers that change the document vectors need a
    new sharded index (the shards' shared centroids are trained on all of them at once)."""
    started, shard_map = time.perf_counter(), ShardMap.read(index_dir)
    reports = []
    for number, directory in enumerate(shard_map.shard_dirs(index_dir)):

        def owned(doc_id: str, number: int = number) -> bool:
            return shard_of(doc_id, shard_map.count) == number

        reports.append(
            reindex(
                directory,
                corpus,
                encoder,
                fields,
                skip_invalid=skip_invalid,
                show_progress=show_progress,
                allow_mass_delete=allow_mass_delete,
                executor=executor,
                owned=owned,
            )
        )
    return _combined(reports, index_dir, shard_map, started, reports[0].skipped)


def _combined(
    reports: list[ReindexReport], index_dir, shard_map: ShardMap, started: float, skipped: list[str]
) -> ReindexReport:
    """One report of the shards' writes; ``unchanged`` counts every shard's documents."""
    total = {
        name: sum(getattr(report, name) for report in reports)
        for name in ("added", "updated", "deleted", "encoded", "from_checkpoint")
    }
    live = sum(Manifest.read(layout.current_version_dir(d)).document_count for d in shard_map.shard_dirs(index_dir))
    total["unchanged"] = live - total["added"] - total["updated"]
    return replace(
        reports[0],
        **total,
        retrained=any(report.retrained for report in reports),
        seconds=time.perf_counter() - started,
        version_dir=Path(index_dir),
        skipped=skipped,
        published=any(report.published for report in reports),
    )
