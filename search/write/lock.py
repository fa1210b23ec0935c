"""One writer per index directory.

The lock is an ``flock`` on ``DIR/.lock``: the kernel releases it when its holder exits, even by
``kill -9``, so a lock left by a dead process is never mistaken for a live one. The file also holds
who took it (pid, host, command, time) so the second writer's error can name the holder.

That record only informs: the ``flock`` alone decides who writes. So a record that cannot be read (a
damaged file, random bytes, a pid that is not a number) found by the writer that now holds the lock
is stale by construction, since no other writer can hold it, and is overwritten with a warning; a
busy lock with such a record names "another process". Refusing to write until someone deletes the
file by hand would protect nothing.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from dualsearch.errors import IndexLockedError
from dualsearch.index.layout import not_writable, process_alive

logger = logging.getLogger(__name__)
LOCK_NAME = ".lock"
MAX_PID = 2**31  # pids are positive C ints; a record beyond is damaged


class IndexLock:
    """Context manager holding the writer lock of ``index_dir`` (created if missing).

    Example:
        >>> import tempfile
        >>> with IndexLock(tempfile.mkdtemp()):
        ...     pass  # write a new version here
    """

    def __init__(self, index_dir: str | Path) -> None:
        self.path = Path(index_dir) / LOCK_NAME
        self._handle = None

    def __enter__(self) -> IndexLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")
        except OSError as error:  # a read-only directory, or a path under a file
            raise not_writable(self.path, error) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(self.path)
            handle.close()
            raise IndexLockedError(f"{self.path.parent} is being written by {holder}; wait for it to finish") from None
        _note_stale_holder(self.path)
        try:
            _write_holder(handle)
        except OSError as error:  # a full disk, say: the lock is ours, the record of it cannot be written
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
            raise not_writable(self.path, error) from None
        self._handle = handle
        return self

    def __exit__(self, *exc_info) -> None:
        if self._handle is not None:
            self._handle.truncate(0)  # a clean exit leaves no holder to mistake for a dead one
            self._handle.flush()
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _write_holder(handle) -> None:
    handle.seek(0)
    handle.truncate()
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv[:3]),
    }
    handle.write(json.dumps(record))
    handle.flush()


def _note_stale_holder(path: Path) -> None:
    """Log what the record left in the lock file (which we now hold) says of the writer before us."""
    text = _read_text(path)
    if not text:
        return  # the last writer exited cleanly
    previous = _read_holder(path)
    if previous is None:
        logger.warning(
            "%s held an unreadable holder record (%r); overwriting it: no writer holds the lock", path, text[:80]
        )
    elif previous["host"] == socket.gethostname() and not process_alive(previous["pid"]):
        logger.warning("taking over a stale lock of %s: process %s died while writing", path.parent, previous["pid"])


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _read_holder(path: Path) -> dict | None:
    """The holder record, or None when there is none or it is unreadable (damaged, or half written)."""
    try:
        record = json.loads(path.read_bytes().decode("utf-8") or "null")
    except (OSError, ValueError, RecursionError):  # ValueError: not UTF-8, not JSON; RecursionError: nested deep
        return None
    if not isinstance(record, dict):
        return None
    pid, host = record.get("pid"), record.get("host")
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < MAX_PID or not isinstance(host, str):
        return None
    return record


def _describe(path: Path) -> str:
    holder = _read_holder(path)
    if not holder:
        return "another process"
    command, since = holder.get("command", "?"), holder.get("since")
    return f"process {holder.get('pid')} on {holder.get('host')} ({command!s}, since {since})"


def held_by_another(index_dir: str | Path) -> str | None:
    """Who holds the writer lock of ``index_dir`` (described as a busy lock's error names it), or None
    when it is free. ``flock`` locks belong to open files, so this process's own :class:`IndexLock`
    counts as another's: a caller that may hold one knows it (as the service does)."""
    path = Path(index_dir) / LOCK_NAME
    try:
        handle = open(path, "a+", encoding="utf-8")
    except OSError:
        return None  # no lock file can be made: no writer can hold it either
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _describe(path)
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None
