"""The extraction's child process: import the public standard library under guard, print its documents.

:func:`dualsearch.corpora.stdlib_docs.extract` runs :func:`main` in a fresh ``python -I -S -B``
whose working directory is a temporary directory; the process that asked never imports the modules
documented. :func:`main` writes one JSON object to stdout: ``records`` (``_id``, ``title``,
``text``, ``metadata``), ``left_out`` (reason to module names), ``import_failed`` (name to error),
``deprecated_modules``, ``refused`` (actions the guard stopped) and ``sys_modules``.

Each object gets one document, under the public name people import it by: among the modules that
export it (``__all__``, or the names a module defines), builtins first, then the shortest dotted
module path (``asyncio.sleep``, not ``asyncio.tasks.sleep``), then the name it was defined with.
"""

from __future__ import annotations

import json
import os
import pkgutil
import re
import sys
import time
import traceback
import warnings
from collections import defaultdict
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from dualsearch.corpora import stdlib_members as members
from dualsearch.corpora.stdlib_modules import deny_list, is_deprecated_module, leave_out_reason
from dualsearch.corpora.stdlib_sandbox import Guard, ImportTimeout, install, keep_stdout, time_limit

UNDOCUMENTED = "without a docstring of its own"  # said by the text of what has none (its call, its methods)
DEPRECATED_TITLE = " (deprecated)"  # said where a reader looks first, and seen by both towers and BM25
IMPORT_SECONDS = 20  # per module; the slowest standard module imports in well under a second
_DEPRECATION_MESSAGE = re.compile(r"(?i)(?:'([\w.]+)'|the ([\w.]+) module) is deprecated")
_NAMEDTUPLE_FIELD = re.compile(r"Alias for field number \d+")  # collections.namedtuple's generated docstrings
_DEPRECATED_MARKER = re.compile(r"\*\*DEPRECATED\*\*[ \t]*\n\s*\n(?=\S)", re.IGNORECASE)  # a paragraph of its own
ENUM_PLACEHOLDER = "An enumeration."  # what enum gives a standard enumeration without a docstring (re.RegexFlag)
ENUM_MEMBERS_LISTED = 30
DATA_VALUE_CHARS = 80  # a longer value is described by its type alone
# "Deprecated since 3.12", "This function is deprecated", ".. deprecated::": not "warnings about deprecated features".
_DEPRECATED_TEXT = re.compile(
    r"(?im)^(?:\.\. )?deprecated\b|\b(?:is|are|now) deprecated\b|\bdeprecated (?:alias|since)\b"
)


def main() -> None:
    """Extract, and write the JSON object to the original stdout (what modules print goes nowhere)."""
    out = keep_stdout()
    try:
        payload = extract()
    except BaseException as error:  # stderr is os.devnull by now: the parent reads the failure here
        payload = {"error": "".join(traceback.format_exception(error))}
    with os.fdopen(out, "w", encoding="utf-8") as stream:
        json.dump(payload, stream)


def extract() -> dict[str, Any]:
    """The JSON object :func:`main` writes."""
    started = time.perf_counter()
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    has_display = sys.platform in ("win32", "darwin") or bool(display)
    guard = Guard(os.getcwd(), deny_list(has_display))
    install(guard)
    modules, left_out, failed, warned = import_public_modules(guard.denied)
    for name in implementation_modules(modules):
        del modules[name]
        left_out["implementation of a package that re-exports from it"].append(name)
    records = {}
    for record in [*topic_records(), *module_records(modules, warned), *object_records(modules, warned)]:
        records.setdefault(record["_id"], record)  # a value its module's docstring describes keeps that text
    return {
        "records": list(records.values()),
        "modules": sorted(modules),
        "left_out": {reason: sorted(names) for reason, names in sorted(left_out.items())},
        "import_failed": failed,
        "deprecated_modules": sorted(warned),
        "refused": guard.refused,
        "sys_modules": sorted(sys.modules),
        "seconds": round(time.perf_counter() - started, 2),
    }


def import_public_modules(denied: frozenset[str]) -> tuple[dict[str, ModuleType], dict, dict[str, str], set[str]]:
    """(documented modules by public name, left out by reason, import errors, modules that warned)."""
    queue = sorted(sys.stdlib_module_names)
    modules: dict[str, ModuleType] = {}
    left_out: dict[str, list[str]] = defaultdict(list)
    failed: dict[str, str] = {}
    warned: set[str] = set()
    while queue:
        name = queue.pop(0)
        reason = leave_out_reason(name, denied)
        if reason:
            left_out[reason].append(name)
            continue
        module, error = _import(name, warned)
        if module is None:
            failed[name] = error
            continue
        modules[name] = module
        if hasattr(module, "__path__"):
            queue.extend(sorted(f"{name}.{info.name}" for info in pkgutil.iter_modules(module.__path__)))
    if "os" in modules:  # posixpath (ntpath) is what users call os.path
        modules["os.path"] = modules["os"].path
    return modules, left_out, failed, warned


def implementation_modules(modules: dict[str, ModuleType]) -> dict[str, str]:
    """Submodules whose package re-exports some of their public objects, with that package.

    Such a submodule is how its package is written, not what users import: ``json.encoder`` (json
    exports ``JSONEncoder``), ``asyncio.tasks`` (``asyncio.sleep``), ``unittest.case``. What the
    package re-exports is documented under the package's names; the submodule's module document and
    the helpers the package does not export are left out.
    """
    found = {}
    for package_name, package in modules.items():
        if not hasattr(package, "__path__"):
            continue
        origins = set()
        for attribute in members.public_names(package, package_name):
            try:
                origins.add(getattr(getattr(package, attribute), "__module__", None))
            except Exception:  # a lazy module __getattr__ may fail
                continue
        for origin in origins:
            if isinstance(origin, str) and origin in modules and origin.startswith(package_name + "."):
                found[origin] = package_name
    return found


def _import(name: str, warned: set[str]) -> tuple[ModuleType | None, str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with time_limit(IMPORT_SECONDS):
                __import__(name)
        except ImportTimeout:
            return None, f"import took over {IMPORT_SECONDS} s"
        except (Exception, SystemExit) as error:
            return None, f"{type(error).__name__}: {error}"[:200]
    for warning in caught:
        match = _DEPRECATION_MESSAGE.search(str(warning.message))
        if issubclass(warning.category, DeprecationWarning) and match:
            warned.add(match[1] or match[2])
    return sys.modules[name], ""


def topic_records() -> Iterator[dict[str, Any]]:
    """pydoc's language-reference topics (``if``, ``with``, ``assert`` ...), whole."""
    from pydoc_data.topics import topics

    for name in sorted(topics):
        text = topics[name].strip()
        if text:
            metadata = {"kind": "topic", "module": "", "defined_in": "pydoc_data.topics", "deprecated": False}
            yield {"_id": f"topic:{name}", "title": f"Language reference: {name}", "text": text, "metadata": metadata}


def module_records(modules: dict[str, ModuleType], warned: set[str]) -> Iterator[dict[str, Any]]:
    """One document a module with a docstring, and one for each datum its docstring lists (``sys.argv``)."""
    for name, module in sorted(modules.items()):
        doc = members.clean_doc(members.own_doc(module))
        if not doc:
            continue
        deprecated = is_deprecated_module(name, warned)
        metadata = {"kind": "module", "module": name, "defined_in": module.__name__, "deprecated": deprecated}
        title = f"{name} module" + (DEPRECATED_TITLE if deprecated else "")
        yield {"_id": f"module:{name}", "title": title, "text": doc, "metadata": metadata}
        for attribute, text in members.glossary(name, doc):
            value = getattr(module, attribute, None)
            if value is None or members.kind_of(value) in ("class", "function") or isinstance(value, ModuleType):
                continue
            data = {**metadata, "kind": "data", "defined_in": f"{module.__name__}.{attribute}"}
            yield {"_id": f"data:{name}.{attribute}", "title": f"{name}.{attribute}", "text": text, "metadata": data}


def object_records(modules: dict[str, ModuleType], warned: set[str]) -> Iterator[dict[str, Any]]:
    """Documents of classes, functions and data, each under its public name; then the classes' members."""
    for public, module_name, obj, kind in canonical_names(modules):
        deprecated = is_deprecated_module(module_name, warned)
        record = document(kind, public, module_name, obj, deprecated=deprecated)
        if record:
            yield record
        if kind != "class":
            continue
        for name, member, member_kind, drop_first, inherited in members.class_members(obj):
            record = document(member_kind, f"{public}.{name}", module_name, member, drop_first, deprecated, inherited)
            if record:
                yield record


def canonical_names(modules: dict[str, ModuleType]) -> list[tuple[str, str, Any, str]]:
    """(public name, module, object, kind) once for each object that some documented module exports."""
    best: dict[tuple[int, str], tuple] = {}
    for module_name, module in modules.items():
        for attribute in members.public_names(module, module_name):
            try:
                obj = getattr(module, attribute)
            except Exception:  # a lazy module __getattr__ may fail
                continue
            kind = members.kind_of(obj)
            plain = kind is None and members.is_plain_datum(attribute, obj)
            if kind is None and not plain:
                continue
            public = attribute if module_name == "builtins" else f"{module_name}.{attribute}"
            rank = (
                module_name != "builtins",
                module_name.count("."),
                attribute != getattr(obj, "__name__", attribute),
                module_name != getattr(obj, "__module__", None),
                public,
            )
            # a re-export is the same object; small numbers are shared objects too, so data is told
            # apart by its name as well (marshal.version is not another module's 4)
            key = (id(obj), attribute if plain else "")
            if key not in best or rank < best[key][0]:
                best[key] = (rank, public, module_name, obj, "data" if plain else kind)
    return sorted((entry[1:] for entry in best.values()), key=lambda entry: entry[0])


def document(
    kind: str,
    public: str,
    module: str,
    obj: Any,
    drop_first: bool = False,
    deprecated: bool = False,
    inherited_from: str | None = None,
) -> dict[str, Any] | None:
    """One record: title ``public(signature)``, text the docstring (summary first), or None without one."""
    doc = members.clean_doc(members.own_doc(obj))
    found = members.signature(obj, drop_first) if kind in ("class", "function", "method") else None
    fallback, doc = members.split_signature_lines(doc) if kind != "data" else (None, doc)
    marker = _DEPRECATED_MARKER.match(doc)
    if marker:  # the title says so; the summary that follows leads the text (imp.load_module)
        deprecated, doc = True, doc[marker.end() :]
    if kind == "class" and doc in ("", ENUM_PLACEHOLDER) and isinstance(getattr(obj, "__members__", None), Mapping):
        doc = undocumented_enum_text(public, obj)
    elif not doc and kind == "class":
        doc = undocumented_class_text(public, obj, found)
    elif not doc and kind in ("function", "method") and found is not None:
        doc = f"{kind.capitalize()} {members.clean_doc(public + str(found))}, {UNDOCUMENTED}."
    elif not doc and kind == "data" and members.is_plain_datum(public.rpartition(".")[2], obj):
        doc = undocumented_data_text(public, obj)
    if not doc or _NAMEDTUPLE_FIELD.fullmatch(doc):
        return None
    deprecated = deprecated or bool(getattr(obj, "__deprecated__", None)) or bool(_DEPRECATED_TEXT.search(doc))
    origin = getattr(obj, "fget", None) or obj  # a property is defined where its getter is
    defined = members.defined_in(origin) or public  # a number or a string says nothing of where it is from
    metadata = {"kind": kind, "module": module, "defined_in": defined, "deprecated": deprecated}
    if found is not None or fallback:
        metadata["signature"] = members.clean_doc(f"{public}{found if found is not None else fallback}")
    if inherited_from:
        metadata["inherited_from"] = inherited_from
    title = members.short_title(public, found, fallback) + (DEPRECATED_TITLE if deprecated else "")
    return {"_id": f"{kind}:{public}", "title": title, "text": doc, "metadata": metadata}


def undocumented_data_text(public: str, value: Any) -> str:
    """What a value without documentation tells a reader: its type, and the value itself when it is
    a short number or text (``math.pi``); a container's contents are not shown (``os.environ`` would
    show the environment).

    Example:
        >>> undocumented_data_text("math.pi", 3.141592653589793)
        'Data math.pi = 3.141592653589793 (float), without a docstring of its own.'
        >>> undocumented_data_text("keyword.kwlist", ["False", "None"])
        'Data keyword.kwlist, of type list, without a docstring of its own.'
    """
    kind = type(value)
    type_name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    shown = repr(value)
    if isinstance(value, (bool, int, float, complex, str, bytes)) and len(shown) <= DATA_VALUE_CHARS:
        return f"Data {public} = {shown} ({type_name}), {UNDOCUMENTED}."
    return f"Data {public}, of type {type_name}, {UNDOCUMENTED}."


def undocumented_enum_text(public: str, enumeration: type) -> str:
    """What an enumeration without a docstring tells a reader: its members (re.RegexFlag, signal.Signals)."""
    names = list(enumeration.__members__)
    listed = ", ".join(names[:ENUM_MEMBERS_LISTED]) + (", ..." if len(names) > ENUM_MEMBERS_LISTED else "")
    return f"Enumeration {public}, {UNDOCUMENTED}. Its members: {listed}."


def undocumented_class_text(public: str, cls: type, found) -> str:
    """What a class without a docstring still tells a reader (csv.DictReader, multiprocessing.Process):
    how to call it and the methods it offers. Empty when it offers neither."""
    methods = [name for name, _, kind, _, _ in members.class_members(cls) if kind == "method"]
    if found is None and not methods:
        return ""
    call = members.clean_doc(f"{public}{found}") if found is not None else public
    listed = f" Its methods: {', '.join(methods[:30])}." if methods else ""
    return f"Class {call}, {UNDOCUMENTED}.{listed}"


if __name__ == "__main__":
    main()
