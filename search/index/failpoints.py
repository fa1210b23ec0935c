"""Named points where a test can make a writer die, to prove crashes at that moment are harmless.

Set ``DUALSEARCH_KILL_AT=<name>`` (optionally ``<name>:<n>`` for the n-th time the point is
reached) and the process sends itself SIGKILL there: no clean-up, no ``finally`` blocks, exactly
like ``kill -9`` or a power cut for the files already handed to the kernel. Unset, a point costs one
dictionary look-up.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

from dualsearch.defaults import KILL_AT_VARIABLE

_reached: Counter[str] = Counter()


def failpoint(name: str) -> None:
    wanted = os.environ.get(KILL_AT_VARIABLE)
    if not wanted:
        return
    target, _, nth = wanted.partition(":")
    if target != name:
        return
    _reached[name] += 1
    if _reached[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
