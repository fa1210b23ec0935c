"""One writer per index directory.

The lock is an ``flock`` on ``DIR/.lock``: the kernel releases it when its holder exits, even by
``kill -9``, so a lock left by a dead process is never mistaken for a live one. The file also holds
who took it (pid, host, command, time) so the second writer's error can name the holder.
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
from dualsearch.index.layout import not_writable

logger = logging.getLogger(__name__)
LOCK_NAME = ".lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        previous = _read_holder(self.path)
        if previous and previous.get("host") == socket.gethostname() and not _pid_alive(int(previous.get("pid", 0))):
            logger.warning(
                "taking over a stale lock of %s: process %s died while writing", self.path.parent, previous["pid"]
            )
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "command": " ".join(sys.argv[:3]),
                }
            )
        )
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc_info) -> None:
        if self._handle is not None:
            self._handle.truncate(0)  # a clean exit leaves no holder to mistake for a dead one
            self._handle.flush()
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _read_holder(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, json.JSONDecodeError):
        return None


def _describe(path: Path) -> str:
    holder = _read_holder(path)
    if not holder:
        return "another process"
    command, since = holder.get("command", "?"), holder.get("since")
    return f"process {holder.get('pid')} on {holder.get('host')} ({command!s}, since {since})"
