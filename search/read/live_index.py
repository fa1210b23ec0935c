"""Follow an index directory's live version in a long-running process: :class:`LiveIndex`.

A re-index (by any process) publishes a new version by replacing the ``CURRENT`` pointer. A server
keeps answering from the version it has open, notices the new pointer (a watcher thread reads it
every ``check_seconds``, and a writer in the same process calls :meth:`LiveIndex.refresh`), opens
the new version beside the old one with the same towers, and swaps. Requests hold a *lease* on the
searcher they started with, so a swap never fails a request in flight; the old version is closed
when its last lease ends, so two versions share memory only for the length of the slowest request.

A version built with other towers (``dualsearch reindex --model``) is served with its own towers when
the index's towers are followed (``follow_towers``, as ``dualsearch serve`` does without ``--model``):
they are loaded, and the swap happens as for any version. A new version that cannot be opened (towers
other than the fixed ones given, a damaged file, a version removed by two quick publishes) leaves the
old one serving; the reason is logged and kept in :attr:`problem`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dualsearch.errors import DualsearchError, IndexMismatchError, IndexNotFoundError
from dualsearch.index import layout
from dualsearch.index.manifest import Manifest
from dualsearch.read.searcher import Searcher
from dualsearch.towers.contract import Encoder

logger = logging.getLogger(__name__)
CHECK_SECONDS = 1.0


@dataclass
class _Held:
    """One open version and the requests using it."""

    searcher: Searcher
    pointer: str  # the CURRENT file's text when it was opened
    leases: int = 0
    retired: bool = False


class LiveIndex:
    """The live version of ``index_dir``, swapped when a newer one is published.

    Args:
        index_dir: An index directory; it may not exist yet (then :meth:`lease` raises
            :class:`IndexNotFoundError` until a first version is published).
        load_encoder: Called with the first version's manifest to get the towers (and, when
            following towers, with the manifest of each version built with other towers).
        check_seconds: How often the watcher thread reads the pointer (0: no thread; call
            :meth:`refresh` yourself).
        follow_towers: Serve a version built with other towers with towers loaded for it, instead of
            keeping the old version (the towers ``load_encoder`` gives must then follow the manifest).

    Example:
        >>> import tempfile
        >>> from dualsearch.write.build import index_corpus
        >>> from dualsearch.testing import FakeEncoder
        >>> index_dir = Path(tempfile.mkdtemp()) / "index"
        >>> _ = index_corpus("tiny", index_dir, FakeEncoder())
        >>> with LiveIndex(index_dir, lambda model: FakeEncoder(), check_seconds=0) as live:
        ...     with live.lease() as searcher:
        ...         print(searcher.search("green tea", k=1)[0].doc_id)
        tea-green
    """

    def __init__(
        self,
        index_dir: str | Path,
        load_encoder: Callable[[Manifest], Encoder],
        check_seconds: float = CHECK_SECONDS,
        follow_towers: bool = False,
    ) -> None:
        self.index_dir = Path(index_dir)
        self._load_encoder, self.follow_towers = load_encoder, follow_towers
        self.encoder: Encoder | None = None
        self.problem: str | None = None  # why the newest published version is not the one served
        self.swaps = 0
        self._held: _Held | None = None
        self._lock = threading.Lock()  # guards _held and lease counts
        self._refreshing = threading.Lock()  # one refresh at a time (watcher and writers)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.refresh()
        if check_seconds > 0:
            self._watcher = threading.Thread(
                target=self._watch, args=(check_seconds,), name="dualsearch-live-index", daemon=True
            )
            self._watcher.start()

    def __enter__(self) -> LiveIndex:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def available(self) -> bool:
        return self._held is not None

    def refresh(self) -> bool:
        """Swap to the published version if it is newer than the one served; True if it swapped."""
        with self._refreshing:
            pointer = _read_pointer_text(self.index_dir)
            if pointer is None or (self._held is not None and self._held.pointer == pointer):
                return False
            try:
                searcher = self._open()
            except (DualsearchError, OSError) as error:
                if str(error) != self.problem:
                    logger.error("%s: keeping %s: %s", self.index_dir, self._served_name(), error)
                self.problem = str(error)
                return False
            self.problem = None
            with self._lock:
                old, self._held = self._held, _Held(searcher, pointer)
                if old is not None:
                    old.retired = True
                    if old.leases == 0:
                        old.searcher.close()
                    self.swaps += 1
            logger.info("%s: now serving %s", self.index_dir, searcher.version_dir.name)
            return True

    def _open(self) -> Searcher:
        if self.encoder is None:
            self.encoder = self._load_encoder(self._current_manifest())
        held = self._held.searcher if self._held is not None else None  # its segments are shared
        try:
            return Searcher.open(self.index_dir, encoder=self.encoder, previous=held)
        except IndexMismatchError:
            if not self.follow_towers:
                raise
        # the index moved to other towers: requests in flight keep the old towers with the old searcher
        encoder = self._load_encoder(self._current_manifest())
        searcher = Searcher.open(self.index_dir, encoder=encoder)
        self.encoder = encoder
        logger.info("%s: the index changed towers; now %r", self.index_dir, searcher.manifest.model)
        return searcher

    def _current_manifest(self) -> Manifest:
        return Manifest.read(layout.current_version_dir(self.index_dir))

    def _served_name(self) -> str:
        held = self._held
        return held.searcher.version_dir.name if held is not None else "no version"

    @contextmanager
    def lease(self) -> Iterator[Searcher]:
        """The searcher of the served version, kept open until the ``with`` block ends.

        Raises:
            IndexNotFoundError: no version has been published (or none could be opened) yet.
        """
        with self._lock:
            held = self._held
            if held is None:
                reason = f": {self.problem}" if self.problem else ""
                raise IndexNotFoundError(f"no index is available at {self.index_dir} yet{reason}")
            held.leases += 1
        try:
            yield held.searcher
        finally:
            with self._lock:
                held.leases -= 1
                if held.retired and held.leases == 0:
                    held.searcher.close()

    def _watch(self, check_seconds: float) -> None:
        while not self._stop.wait(check_seconds):
            try:
                self.refresh()
            except Exception:  # the watcher must outlive any one failure
                logger.exception("%s: checking for a new version failed", self.index_dir)

    def close(self) -> None:
        """Stop watching and close the served version (leases still running finish first)."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        with self._lock:
            held, self._held = self._held, None
            if held is not None:
                held.retired = True
                if held.leases == 0:
                    held.searcher.close()


def _read_pointer_text(index_dir: Path) -> str | None:
    """The ``CURRENT`` file's text, or None when there is no index there (yet)."""
    for attempt in range(3):
        try:
            return (index_dir / layout.CURRENT_NAME).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError:  # replaced while being read on some file systems: read again
            time.sleep(0.01 * (attempt + 1))
    return None
