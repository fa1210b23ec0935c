"""The service's writes: acknowledged once logged, searchable at the next refresh (:class:`ServiceWrites`).

``POST /documents`` and ``DELETE /documents/{id}`` are checked against the served version and the
writes not yet applied, appended to the write-ahead log (:mod:`dualsearch.write.write_log`) and
fsynced; then the request is answered (202), or, with ``wait``, once a version holding the write is
served (200). Writers of one server queue at the append, which costs a few milliseconds, not at a
publish.

A refresher thread turns the records logged since the last refresh into one version every
``refresh_seconds`` (Elasticsearch's refresh interval, 1 s by default; a ``wait`` request refreshes at
once): a segment of the added documents and deletion files (:func:`~dualsearch.write.logged_writes.apply_records`).
A merge thread folds small segments together beside it (:mod:`dualsearch.write.background_merge`).

While another process (a CLI ``reindex``) holds the index's writer lock, writes answer 409 with
``Retry-After``; records already logged wait in the log until the lock is free. At start the server
applies what the log holds beyond the live version, so an acknowledged write survives a crash.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dualsearch.corpora.document import Document
from dualsearch.corpora.records import check_counts
from dualsearch.defaults import REFRESH_SECONDS
from dualsearch.errors import IndexLockedError, IndexNotFoundError, InvalidInputError, UnknownDocumentError
from dualsearch.index import layout
from dualsearch.index.manifest import Manifest
from dualsearch.index.tower_match import check_writable_towers
from dualsearch.ranking.settings import SearchSettings
from dualsearch.read.live_index import LiveIndex
from dualsearch.write.background_merge import merge_due
from dualsearch.write.lock import IndexLock, held_by_another
from dualsearch.write.logged_writes import apply_records, net_changes
from dualsearch.write.write_log import LogOwnedError, LogRecord, WriteAheadLog

logger = logging.getLogger(__name__)
WAIT_SECONDS = 60.0  # the longest a `wait` request is held; then it is answered 202, the write still logged
RETRY_SECONDS = 5.0  # between attempts to apply the log after a failure other than a busy lock


@dataclass(frozen=True)
class Acknowledged:
    """What a logged write answers."""

    sequence: int
    added: int = 0
    updated: int = 0
    deleted: int = 0
    searchable: bool = False
    version: str | None = None  # a served version holding the write, once searchable

    def record(self) -> dict:
        return {
            "sequence": self.sequence,
            "added": self.added,
            "updated": self.updated,
            "deleted": self.deleted,
            "searchable": self.searchable,
            "version": self.version,
        }


class ServiceWrites:
    """The writes of a server serving ``live``: call :meth:`start` once, :meth:`close` at the end.

    Args:
        live: The served index; its towers encode the logged documents.
        refresh_seconds: How often logged writes become a version (0: at once, after each write).
        merge: Fold small segments together in a background thread.
    """

    def __init__(self, live: LiveIndex, refresh_seconds: float = REFRESH_SECONDS, merge: bool = True) -> None:
        if refresh_seconds < 0:
            raise InvalidInputError(f"the refresh interval must be 0 or more seconds, got {refresh_seconds}")
        self.live, self.index_dir, self.refresh_seconds = live, live.index_dir, refresh_seconds
        self.problem: str | None = None  # why the log could not be applied last time
        self.refreshes = 0
        self.merges = 0
        self._log: WriteAheadLog | None = None
        self._pending: list[LogRecord] = []  # logged, not yet in a published version
        self._overlay: dict[str, Document | None] = {}  # their net change per id
        self._applied = 0  # the last sequence a published version holds
        self._version: str | None = None  # the version that published it
        # the last sequence a refresh failed to apply, and why: a waiting request answers with the error
        self._failed: tuple[int, Exception | None] = (0, None)
        self._mutex = threading.Lock()  # appends, the pending records and the applied mark
        self._applied_changed = threading.Condition(self._mutex)
        self._own_lock = _OwnLock(self.index_dir)
        self._refresh_now = threading.Event()
        self._merge_now = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._merge = merge

    # --- the routes' side ------------------------------------------------------------------------------

    def add(self, documents: list[Document], wait: bool = False) -> Acknowledged:
        """Log documents to add (replacing any with their ids); see the module's description."""
        if not documents:
            raise InvalidInputError("no documents in the body: send a JSON list of records or JSON lines")
        self.live.refresh()  # another process may have published, perhaps with other towers
        with self._mutex:
            log = self._open_log()
            published = self._published_manifest()
            prior = SearchSettings.from_dict(published.search).prior_field
            for number, document in enumerate(documents, 1):
                check_counts(document, (prior,) if prior else (), f"record {number}")
            with self.live.lease() as searcher:
                present = self._present(searcher, [document.id for document in documents])
            self._own_lock.refuse_if_held_by_another()
            record = log.append("add", documents=documents)
            self._logged(record)
        ids = {document.id for document in documents}
        return self._answer(record, wait, added=len(ids - present), updated=len(ids & present))

    def delete(self, doc_id: str, wait: bool = False) -> Acknowledged:
        """Log the deletion of one document (404 when neither the served version nor the logged writes
        hold it; 400 when it is the last)."""
        self.live.refresh()
        with self._mutex:
            log = self._open_log()
            self._published_manifest()
            with self.live.lease() as searcher:
                if doc_id not in self._present(searcher, [doc_id]):
                    raise UnknownDocumentError(f"no document with id {doc_id!r}")
                if self._document_count(searcher) <= 1:
                    raise InvalidInputError(
                        f"deleting it would leave {self.index_dir} with no document; an index holds at least one "
                        "(to drop the whole index, remove its directory)"
                    )
            self._own_lock.refuse_if_held_by_another()
            record = log.append("delete", ids=[doc_id])
            self._logged(record)
        return self._answer(record, wait, deleted=1)

    def snapshot(self) -> dict:
        """For ``/stats``: the log's state."""
        with self._mutex:
            return {
                "pending": len(self._pending),
                "applied_sequence": self._applied,
                "refresh_seconds": self.refresh_seconds,
                "refreshes": self.refreshes,
                "merges": self.merges,
                "problem": self.problem,
            }

    def _published_manifest(self) -> Manifest:
        """The live version's manifest, once this server's towers are checked against it: a write the
        refresher could never apply (the index moved to other towers, and this server's are fixed) is
        refused now, 409 ``towers_differ``, not acknowledged."""
        manifest = Manifest.read(layout.current_version_dir(self.index_dir))
        check_writable_towers(manifest, self.live.encoder, self.index_dir)
        return manifest

    def _present(self, searcher, doc_ids: list[str]) -> set[str]:
        """Which of ``doc_ids`` exist once the logged writes are applied."""
        present = {doc_id for doc_id in doc_ids if self._overlay.get(doc_id) is not None}
        unseen = [doc_id for doc_id in doc_ids if doc_id not in self._overlay]
        return present | set(searcher.store.lookup(unseen))

    def _document_count(self, searcher) -> int:
        """The documents once the logged writes are applied."""
        served = searcher.store.lookup(self._overlay)
        change = sum((document is not None) - (doc_id in served) for doc_id, document in self._overlay.items())
        return searcher.manifest.document_count + change

    def _logged(self, record: LogRecord) -> None:
        self._pending.append(record)
        self._overlay.update(record.changes())
        if self.refresh_seconds == 0:
            self._refresh_now.set()

    def _answer(self, record: LogRecord, wait: bool, **counts) -> Acknowledged:
        acknowledged = Acknowledged(record.sequence, **counts)
        if not wait:
            return acknowledged
        self._refresh_now.set()
        with self._applied_changed:
            settled = self._applied_changed.wait_for(
                lambda: max(self._applied, self._failed[0]) >= record.sequence, WAIT_SECONDS
            )
            done, version, failure = self._applied >= record.sequence, self._version, self._failed[1]
        if settled and not done:  # the refresh that took it failed (a full disk): say why; it stays logged
            raise _logged_anyway(failure, record.sequence)
        return Acknowledged(record.sequence, **counts, searchable=done, version=version if done else None)

    def _open_log(self) -> WriteAheadLog:
        """The log, opened at the first write (or at start when an index is there); the caller holds
        the mutex."""
        if self._log is None:
            try:
                applied = Manifest.read(layout.current_version_dir(self.index_dir)).log_sequence
            except IndexNotFoundError:
                raise IndexNotFoundError(f"no index is available at {self.index_dir} yet") from None
            self._log = WriteAheadLog(self.index_dir, applied)  # LogOwnedError: another server takes writes
            self._pending = list(self._log.records)
            self._overlay = net_changes(self._pending)
            self._applied = applied
            if self._pending:
                logger.info("%s: %d logged writes to replay", self.index_dir, len(self._pending))
        return self._log

    # --- the refresher and the merger ------------------------------------------------------------------

    def start(self) -> ServiceWrites:
        """Apply what the log holds beyond the live version (a restart after a crash), then refresh
        and merge in background threads."""
        try:
            with self._mutex:
                self._open_log()
        except (IndexNotFoundError, LogOwnedError) as error:
            logger.info("%s: writes wait: %s", self.index_dir, error)
        else:
            try:
                self.refresh()
            except Exception as error:  # serve anyway: the records stay logged, the refresher tries again
                self._note(f"replaying the write-ahead log failed: {error}", logging.ERROR, exc_info=True)
        for target, name in ((self._refresher, "refresh"), (self._merger, "merge")):
            if name == "merge" and not self._merge:
                continue
            thread = threading.Thread(target=target, name=f"dualsearch-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def refresh(self) -> bool:
        """Publish the logged writes as a version and serve it; True when one was published. A busy
        writer lock (another process) leaves them logged for the next refresh."""
        with self._mutex:
            if not self._pending:
                return False
            records = list(self._pending)
            self._log.rotate()  # the next appends go to a file of their own, removed on its own
        try:
            with self._own_lock.turn():  # apply_records takes the lock
                report = apply_records(self.index_dir, records, self.live.encoder)
        except IndexLockedError as error:
            self._note(f"waiting for the writer lock: {error}", logging.INFO)
            return False
        except Exception as error:
            with self._mutex:
                self._failed = (records[-1].sequence, error)
                self._applied_changed.notify_all()
            raise
        self.live.refresh()
        through = records[-1].sequence
        with self._mutex:
            self._pending = [record for record in self._pending if record.sequence > through]
            self._overlay = net_changes(self._pending)
            self._applied, self._version = through, report.version_dir.name
            self.refreshes += 1
            self.problem = None
            self._log.discard_through(through)
            self._applied_changed.notify_all()
        self._merge_now.set()
        return True

    def _refresher(self) -> None:
        while not self._stop.is_set():
            self._refresh_now.wait(self.refresh_seconds or None)
            self._refresh_now.clear()
            if self._stop.is_set():
                break
            try:
                if self._log is None:
                    with self._mutex:
                        self._open_log()
                self.refresh()
            except (IndexNotFoundError, LogOwnedError):
                pass  # no index yet, or another server takes the writes: nothing of ours to apply
            except Exception as error:  # the refresher must outlive any one failure; the records stay logged
                self._note(f"applying the write-ahead log failed: {error}", logging.ERROR, exc_info=True)
                self._stop.wait(RETRY_SECONDS)

    def _merger(self) -> None:
        while not self._stop.is_set():
            self._merge_now.wait()
            self._merge_now.clear()
            if self._stop.is_set():
                break
            try:
                while not self._stop.is_set() and merge_due(self.index_dir, self.live.encoder, self._own_lock.holding):
                    self.merges += 1
                    self.live.refresh()
            except Exception:  # a merge is an optimisation: the next refresh tries again
                logger.exception("%s: a background merge failed", self.index_dir)

    def _note(self, problem: str, level: int, exc_info: bool = False) -> None:
        if problem != self.problem:
            logger.log(level, "%s: %s", self.index_dir, problem, exc_info=exc_info)
        self.problem = problem

    def close(self) -> None:
        """Stop refreshing and merging; what is logged and not applied stays in the log for the next start."""
        self._stop.set()
        self._refresh_now.set()
        self._merge_now.set()
        for thread in self._threads:
            thread.join(timeout=60)
        with self._mutex:
            if self._log is not None:
                self._log.close()
                self._log = None


def _logged_anyway(failure: Exception, sequence: int) -> Exception:
    """``failure``, of the same class (its HTTP status), saying the write it kept from a version is logged."""
    try:
        return type(failure)(f"{failure}; the write is logged (sequence {sequence}) and is retried at each refresh")
    except TypeError:  # a class that takes other arguments
        return failure


class _OwnLock:
    """The index's writer lock as this server takes it (to apply the log, to publish a merge), and the
    check that no other process holds it, which must not mistake this server's own hold for another's."""

    def __init__(self, index_dir) -> None:
        self.index_dir = index_dir
        self._holders = 0
        self._guard = threading.Lock()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """This process's turn to take the writer lock (the caller takes it: ``apply_records`` does), one
        holder at a time in this process, as between processes."""
        with self._guard:
            self._holders += 1
        try:
            with _LOCK_TURNS:
                yield
        finally:
            with self._guard:
                self._holders -= 1

    @contextmanager
    def holding(self) -> Iterator[IndexLock]:
        """Take the writer lock in this process's turn (IndexLockedError when another process has it)."""
        with self.turn(), IndexLock(self.index_dir) as lock:
            yield lock

    def refuse_if_held_by_another(self) -> None:
        with self._guard:
            if self._holders:
                return  # ours: the write waits in the log for the refresh after it
            holder = held_by_another(self.index_dir)
        if holder is not None:
            raise IndexLockedError(f"{self.index_dir} is being written by {holder}; try again when it finishes")


_LOCK_TURNS = threading.Lock()  # the refresher and the merger of a process take the flock in turn
