"""The guard rails of the extraction's child process, which imports standard-library modules.

Importing a module runs its top-level code. In the child (never in the process that asked for the
corpus) these rails keep that code from reaching outside: an audit hook refuses network access,
new processes, browsers and writes outside the child's temporary working directory; a finder
refuses deny-listed modules, so no module imports one indirectly; file descriptors 1 and 2 go to
``os.devnull`` (a C module's printf too); each import has a time limit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator

# Audit events refused outright (https://docs.python.org/3/library/audit_events.html).
REFUSED_EVENTS = frozenset(
    {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo"}
    | {"socket.gethostbyname", "socket.gethostbyaddr", "urllib.Request", "webbrowser.open", "subprocess.Popen"}
    | {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill", "os.killpg"}
    | {"os.startfile", "pty.spawn"}
)
# Events that change files: refused unless every path is inside the working directory.
FILE_EVENTS = frozenset({"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "shutil.rmtree"})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class RefusedError(PermissionError):
    """What a refused action raises inside the child."""


class Guard:
    """An audit hook and import finder; records what it refused.

    Attributes:
        workdir: The one directory code may write into.
        denied: Top-level module names no import may load.
        refused: ``"event: detail"`` for each refused action, in order.
    """

    def __init__(self, workdir: str, denied: frozenset[str]) -> None:
        self.workdir = os.path.realpath(workdir)
        self.denied = denied
        self.refused: list[str] = []

    def audit(self, event: str, args: tuple) -> None:
        if event in REFUSED_EVENTS or (event in FILE_EVENTS and not self._inside(args)) or self._writes(event, args):
            self.refused.append(f"{event}: {str(args)[:120]}")
            raise RefusedError(f"refused during the standard-library extraction: {event}")

    def _writes(self, event: str, args: tuple) -> bool:
        if event != "open" or len(args) < 3 or not isinstance(args[0], (str, bytes, os.PathLike)):
            return False
        mode, flags = args[1] or "", args[2] or 0
        writing = any(c in str(mode) for c in "wax+") or bool(flags & WRITE_FLAGS)
        return writing and not self._inside(args[:1])

    def _inside(self, args: tuple) -> bool:
        paths = [a for a in args if isinstance(a, (str, bytes, os.PathLike))]
        return all(os.path.realpath(os.fsdecode(p)).startswith(self.workdir + os.sep) for p in paths)

    def find_spec(self, name: str, path=None, target=None):
        """A meta-path finder: deny-listed modules fail to import, whoever imports them."""
        top = name.split(".")[0]
        if top in self.denied:
            self.refused.append(f"import: {name}")
            raise ImportError(f"{name} is deny-listed during the standard-library extraction", name=name)
        return None


def install(guard: Guard) -> None:
    """Install ``guard`` for the rest of the process (audit hooks cannot be removed)."""
    sys.addaudithook(guard.audit)
    sys.meta_path.insert(0, guard)
    os.environ["BROWSER"] = ""  # webbrowser finds no browser to register


def keep_stdout() -> int:
    """Point descriptors 1 and 2 at ``os.devnull`` and return a duplicate of the original stdout.

    What imported modules print goes nowhere; the extraction writes its JSON to the returned descriptor.
    """
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    return saved


class ImportTimeout(Exception):
    """An import ran longer than its time limit."""


def _raise_timeout(signum, frame) -> None:
    raise ImportTimeout


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`ImportTimeout` in the block after ``seconds`` (POSIX only; elsewhere no limit)."""
    if not hasattr(signal, "setitimer"):
        yield
        return
    previous = signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
