"""The embedded default corpus: documentation of the running interpreter's standard library.

Built at run time, nothing committed. It has three kinds of documents:

- ``topic:NAME``: pydoc's language topics (``pydoc_data.topics``: ``if``, ``with``, ``assert`` ...);
- ``module:NAME``: each public module with a docstring;
- ``class:MOD.NAME`` and ``function:MOD.NAME``: public top-level classes and functions with
  docstrings. Titles are the bare qualified name; a function's signature goes to metadata, because
  a long parameter list in the encoded text drowns what the function is for.

Functions and classes keep the first paragraph of their docstring (PEP 257's summary line), and
modules about ``SUMMARY_CHARS`` characters of theirs, cut at a paragraph boundary; the metadata says
when text was cut. The towers mean-pool every token, so paragraphs of parameter details drown what a
function is for: for "serialize an object to a JSON formatted string", json.dumps's summary line
scores 0.72 with the default towers, the same with its next paragraphs 0.30 (``help(name)`` has
the rest).

Pure-Python modules are read with :mod:`ast`, never imported, because some standard modules act when
imported (``antigravity`` opens a browser, ``this`` prints). Only C modules built into the
interpreter (``sys``, ``math``, ``itertools`` ...) are inspected live; they have no such side effects.
"""

from __future__ import annotations

import ast
import inspect
import logging
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Packages that are test suites, IDE internals or installers rather than library documentation.
SUMMARY_CHARS = 600
EXTRACTION_VERSION = 2  # bump when the documents change, so cached default indexes are rebuilt
_SKIPPED_PACKAGES = {"test", "idlelib", "lib2to3", "ensurepip", "turtledemo", "tkinter.test", "distutils.tests"}


def _python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def summary(docstring: str, limit: int = SUMMARY_CHARS) -> str:
    """The opening paragraphs of ``docstring``, at least one, stopping before ``limit`` characters.

    Example:
        >>> summary("First line.\\n\\nDetails " + "x" * 700)
        'First line.'
    """
    paragraphs = [p.strip() for p in docstring.strip().split("\n\n") if p.strip()]
    kept = paragraphs[:1]
    for paragraph in paragraphs[1:]:
        if sum(len(p) + 2 for p in kept) + len(paragraph) > limit:
            break
        kept.append(paragraph)
    return "\n\n".join(kept)


def _record(kind: str, name: str, title: str, text: str, module: str, **extra: str) -> tuple[str, dict[str, Any]]:
    metadata = {"kind": kind, "module": module, "python": _python_version(), **extra}
    if kind != "topic":
        short = summary(text, SUMMARY_CHARS if kind == "module" else 0)
        if short != text.strip():
            metadata["truncated"] = True
        text = short
    return f"stdlib:{kind}:{name}", {"_id": f"{kind}:{name}", "title": title, "text": text, "metadata": metadata}


def _topic_records() -> Iterator[tuple[str, dict[str, Any]]]:
    from pydoc_data.topics import topics

    for name in sorted(topics):
        text = topics[name].strip()
        if text:
            yield _record("topic", name, f"Language reference: {name}", text, "")


def _is_public(name: str) -> bool:
    return not name.startswith("_")


def _module_names_and_paths(stdlib: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(stdlib.rglob("*.py")):
        relative = path.relative_to(stdlib)
        parts = list(relative.with_suffix("").parts)
        if parts[0] in {"site-packages", "dist-packages"} or not all(part.isidentifier() for part in parts):
            continue
        if parts[-1] == "__init__":
            parts.pop()
        if not parts or not all(_is_public(part) for part in parts) or parts[-1] == "__main__":
            continue
        name = ".".join(parts)
        if any(name == skipped or name.startswith(skipped + ".") for skipped in _SKIPPED_PACKAGES):
            continue
        yield name, path


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    return f"({ast.unparse(node.args)})"


def _source_records(module: str, path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, UnicodeDecodeError) as error:
        logger.debug("skipping %s: %s", path, error)
        return
    docstring = ast.get_docstring(tree)
    if docstring:
        yield _record("module", module, f"{module} module", docstring, module)
    for node in tree.body:
        if not _is_public(getattr(node, "name", "_")):
            continue
        docstring = (
            ast.get_docstring(node) if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) else None
        )
        if not docstring:
            continue
        if isinstance(node, ast.ClassDef):
            yield _record("class", f"{module}.{node.name}", f"{module}.{node.name} (class)", docstring, module)
        else:
            name = f"{module}.{node.name}"
            yield _record("function", name, f"{name}()", docstring, module, signature=f"{name}{_signature(node)}")


def _builtin_records(module_name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    module = sys.modules.get(module_name) or __import__(module_name)
    if inspect.getdoc(module):
        yield _record("module", module_name, f"{module_name} module", inspect.getdoc(module), module_name)
    for name, member in sorted(vars(module).items()):
        docstring = inspect.getdoc(member) if _is_public(name) else None
        if not docstring or getattr(member, "__module__", module_name) != module_name:
            continue
        kind = "class" if inspect.isclass(member) else "function" if callable(member) else None
        if kind:
            yield _record(kind, f"{module_name}.{name}", f"{module_name}.{name}", docstring, module_name)


def stdlib_records() -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(location, record)`` for every document of the default corpus, ids unique."""
    yield from _topic_records()
    seen: set[str] = set()
    for module_name in sorted(name for name in sys.builtin_module_names if _is_public(name)):
        for location, record in _builtin_records(module_name):
            if record["_id"] not in seen:
                seen.add(record["_id"])
                yield location, record
    for module_name, path in _module_names_and_paths(Path(sysconfig.get_paths()["stdlib"])):
        for location, record in _source_records(module_name, path):
            # A name defined twice in one module (e.g. under `if sys.platform ...`) keeps its first definition.
            if record["_id"] not in seen:
                seen.add(record["_id"])
                yield location, record
