"""The embedded default corpus: documentation of the running interpreter's standard library.

Built at run time, nothing committed. One document per public name, under the name people import
it by, with ids ``kind:public.name``:

- ``topic:NAME``: pydoc's language topics (``if``, ``with``, ``assert`` ...);
- ``module:NAME``: each public module with a docstring (``module:os.path`` too);
- ``class:NAME``, ``function:NAME``: what modules export, C functions and bound methods included
  (``function:random.shuffle``, ``function:math.gcd``, ``class:collections.defaultdict``);
  builtins without a module (``function:open``, ``class:str``);
- ``method:CLASS.NAME``: public methods of public classes (``method:str.split``,
  ``method:pathlib.Path.glob``), inherited ones included where the base has no documents of its own;
- ``data:NAME``: documented attributes (properties of classes; ``sys.argv``, ``os.sep`` from their
  module's docstring).

Titles are the public name with its signature (``json.dumps(obj, *, skipkeys=False, ...)``); text
is the docstring, whose first paragraph is its summary (PEP 257), so the summary comes first: the
towers mean-pool tokens, and long documents are cut into passages by the engine
(:mod:`dualsearch.index.passages`). Metadata: ``kind``, ``module`` (the public module), ``defined_in``
(where the object says it is defined, e.g. ``asyncio.tasks.sleep``), ``deprecated``,
``signature``, ``python``, ``usage`` (how often the library's own code refers to the name:
:mod:`dualsearch.corpora.stdlib_usage`; the default index ranks with it) and ``inherited_from`` for
inherited members.

The modules are imported in a separate, guarded process (:mod:`dualsearch.corpora.stdlib_extract`),
never in this one: some standard modules act when imported (``antigravity`` opens a browser).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dualsearch.corpora.stdlib_usage import UsageCounts, document_usage
from dualsearch.errors import CorpusError

logger = logging.getLogger(__name__)

EXTRACTION_VERSION = 13  # bump when the documents or how the default index encodes them change: it is rebuilt
EXTRACT_TIMEOUT_SECONDS = 600  # the whole child process; one import has its own, shorter limit
USAGE_SHARES = 2  # children counting usage, a share of the source files each (most of the time taken)
# The child runs ``python -I -S -B`` (no site-packages, no environment, no bytecode written), so it
# loads the extraction's modules from this folder as the package dualsearch.corpora, without the
# dualsearch facade or anything installed.
_BOOTSTRAP = """
import importlib.util, sys, types
root = types.ModuleType("dualsearch")
root.__path__ = []
sys.modules["dualsearch"] = root
spec = importlib.util.spec_from_file_location("dualsearch.corpora", {init!r}, submodule_search_locations=[{folder!r}])
package = importlib.util.module_from_spec(spec)
sys.modules["dualsearch.corpora"] = package
spec.loader.exec_module(package)
from dualsearch.corpora.{entry} import main
main()
"""


def _python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def extract(python: str = sys.executable) -> dict[str, Any]:
    """Run the extraction in a child ``python`` and return its JSON object (see
    :mod:`dualsearch.corpora.stdlib_extract`), each record's metadata with its ``usage`` (counted by
    :data:`USAGE_SHARES` more children beside it: :mod:`dualsearch.corpora.stdlib_usage`); logs the
    time taken and the counts.

    Raises:
        CorpusError: the child failed or ran out of time.
    """
    folder = Path(__file__).resolve().parent
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dualsearch-stdlib-") as workdir:
        # other children count usage in the library's source, a share of the files each, while the
        # first imports it; in children, because parsing source imports modules too (unicodedata)
        children = [_start_child(python, folder, "stdlib_extract", workdir)] + [
            _start_child(python, folder, "stdlib_usage", workdir, str(share), str(USAGE_SHARES))
            for share in range(USAGE_SHARES)
        ]
        try:
            extracted, *counted = [_finish(child, started + EXTRACT_TIMEOUT_SECONDS) for child in children]
        finally:
            for child in children:
                child.kill()
                child.wait()
    payload = _payload(*extracted)
    _add_usage(payload, UsageCounts.merged(UsageCounts.from_json(_payload(*share)) for share in counted))
    _log_report(payload, time.perf_counter() - started)
    return payload


def _start_child(python: str, folder: Path, entry: str, workdir: str, *arguments: str) -> subprocess.Popen:
    """``python -I -S -B`` running ``dualsearch.corpora.ENTRY.main()`` (``arguments`` in its
    ``sys.argv``), its output piped."""
    code = _BOOTSTRAP.format(init=str(folder / "__init__.py"), folder=str(folder), entry=entry)
    return subprocess.Popen(
        [python, "-I", "-S", "-B", "-c", code, *arguments],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_environment(workdir),
    )


def _finish(child: subprocess.Popen, deadline: float) -> tuple[int, bytes, bytes]:
    """The child's exit status and output, once it ends (before ``deadline``, a perf_counter time)."""
    try:
        stdout, stderr = child.communicate(timeout=max(deadline - time.perf_counter(), 0.1))
    except subprocess.TimeoutExpired as error:
        raise CorpusError(f"the standard-library extraction took over {EXTRACT_TIMEOUT_SECONDS} s") from error
    return child.returncode, stdout, stderr


def _add_usage(payload: dict[str, Any], counts: UsageCounts) -> None:
    """Each record's ``usage`` metadata (:mod:`dualsearch.corpora.stdlib_usage`)."""
    classes = {record["_id"].split(":", 1)[1] for record in payload["records"] if record["_id"].startswith("class:")}
    for record in payload["records"]:
        metadata = record["metadata"]
        metadata["usage"] = document_usage(record["_id"], metadata.get("defined_in", ""), counts, classes)
    payload["usage_files"] = counts.files


def _child_environment(workdir: str) -> dict[str, str]:
    """A minimal environment: defaults such as cgi's ``environ=os.environ`` show up in signatures, and
    this process's variables (tokens among them) must not reach the corpus."""
    display = {name: os.environ[name] for name in ("DISPLAY", "WAYLAND_DISPLAY") if os.environ.get(name)}
    return {"PATH": os.defpath, "HOME": workdir, "LANG": "C.UTF-8", "BROWSER": "", **display}


def _payload(returncode: int, stdout: bytes, stderr: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(stdout)
    except ValueError:
        payload = {"error": f"exit status {returncode}: {stderr.decode(errors='replace')[-2000:]}"}
    if "error" in payload:
        raise CorpusError(f"the standard-library extraction failed: {payload['error']}")
    return payload


def _log_report(payload: dict[str, Any], seconds: float) -> None:
    kinds = Counter(record["metadata"]["kind"] for record in payload["records"])
    left_out = {reason: len(names) for reason, names in payload["left_out"].items()}
    logger.info(
        "extracted %d standard-library documents (%s) from %d modules, and their usage from %d source files, "
        "in %.1f s; left out: %s, %d failed to import",
        len(payload["records"]),
        ", ".join(f"{count} {kind}" for kind, count in kinds.most_common()),
        len(payload["modules"]),
        payload["usage_files"],
        seconds,
        ", ".join(f"{count} {reason}" for reason, count in left_out.items()),
        len(payload["import_failed"]),
    )
    for reason, names in payload["left_out"].items():
        logger.debug("left out (%s): %s", reason, ", ".join(names))
    for name, error in payload["import_failed"].items():
        logger.debug("failed to import %s: %s", name, error)
    if payload["refused"]:
        logger.debug("refused during the extraction: %s", "; ".join(payload["refused"]))


@functools.lru_cache(maxsize=1)
def _extract_once() -> dict[str, Any]:
    """One extraction per process: an index build reads the corpus twice (validation, then encoding)."""
    return extract()


def stdlib_records(payload: dict[str, Any] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(location, record)`` for every document of the default corpus, ids unique.

    Args:
        payload: An :func:`extract` result to read; by default the extraction runs now.

    Example:
        >>> records = dict(stdlib_records())
        >>> records["stdlib:function:random.shuffle"]["title"], records["stdlib:method:str.split"]["metadata"]["module"]
        ('random.shuffle(x)', 'builtins')
    """
    payload = payload if payload is not None else _extract_once()
    python = _python_version()
    seen: set[str] = set()
    for record in payload["records"]:
        if record["_id"] in seen:
            continue
        seen.add(record["_id"])
        yield f"stdlib:{record['_id']}", {**record, "metadata": {**record["metadata"], "python": python}}
