"""What one imported module offers to document: its public names, their docstrings and signatures.

Runs in the extraction's child process (:mod:`dualsearch.corpora.stdlib_extract`), on live objects,
so C functions (``math.gcd``), bound methods (``random.shuffle``) and classes of C modules
(``collections.defaultdict``) are seen as users see them.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Iterator, Mapping
from types import GenericAlias, ModuleType
from typing import Any

TITLE_CHARS = 100  # a title longer than this ends its parameter list with "..."
PLAIN_DATA = (bool, int, float, complex, str, bytes, tuple, list, set, frozenset, Mapping)
_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: set for classes made by a class statement, unset for static C types
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # reprs of defaults differ run to run
_ENVIRON = re.compile(r"environ\(\{.*?\}\)")  # a default of os.environ shows the environment
# A C function without a text signature opens its docstring with one: "pack(format, v1, ...) -> bytes".
_SIGNATURE_LINE = re.compile(r"^[A-Za-z_][\w.]*\((?P<params>.*?)\)\s*(?:-+>\s*(?P<returns>.*))?$")
# A single such line is sometimes the summary too: "D.pop(k[,d]) -> v, remove specified key and ...". (Several
# lines list a constructor's forms, "set() -> new empty set object", before the summary.)
SUMMARY_WORDS = 4
# Data documented in its module's docstring: "argv -- command line arguments" (sys), "- os.sep is ..." (os).
_GLOSSARY_LINE = re.compile(r"^(?:(?P<name>\w+) -- |\s*- (?P<module>[\w.]+)\.(?P<attr>\w+) is )(?P<text>.+)$")


def clean_doc(text: str | None) -> str:
    """A docstring without its indentation, memory addresses or environment; "" for None.

    Example:
        >>> clean_doc("  First.\\n\\n    <object object at 0x7f00>")
        'First.\\n\\n<object object>'
        >>> clean_doc("f(environ=environ({'TOKEN': 'x'}))")
        'f(environ=os.environ)'
    """
    return _ENVIRON.sub("os.environ", _ADDRESS.sub("", inspect.cleandoc(text))) if isinstance(text, str) else ""


def split_signature_lines(doc: str) -> tuple[str | None, str]:
    """(the parameters of an opening signature paragraph, the rest), for C functions that have one.

    Example:
        >>> split_signature_lines("pack(format, v1, v2, ...) -> bytes\\n\\nReturn a bytes object.")
        ('(format, v1, v2, ...)', 'Return a bytes object.')
        >>> split_signature_lines("Return a bytes object.")
        (None, 'Return a bytes object.')
        >>> split_signature_lines("date(year, month, day) --> date object")
        ('(year, month, day)', 'date(year, month, day) --> date object')
        >>> split_signature_lines("D.pop(k[,d]) -> v, remove specified key and return the value.\\n\\nIf the ...")[1]
        'D.pop(k[,d]) -> v, remove specified key and return the value.\\n\\nIf the ...'
    """
    first, _, rest = doc.partition("\n\n")
    matches = [_SIGNATURE_LINE.match(line.strip()) for line in first.splitlines()]
    if not matches or not all(matches):
        return None, doc
    if len(matches) == 1 and len((matches[0]["returns"] or "").split()) >= SUMMARY_WORDS:
        return f"({matches[0]['params']})", doc  # the line is the summary too: it stays
    return f"({matches[0]['params']})", rest.strip() or first  # a docstring that is only a signature stays


def own_doc(obj: Any) -> str | None:
    """The docstring an object has itself (an instance reports its class's otherwise), or None."""
    if isinstance(obj, GenericAlias):
        return None  # dict[str, Any] answers with dict's docstring, which is not the alias's
    doc = getattr(obj, "__doc__", None)
    if inspect.isclass(obj) and not doc and inspect.isfunction(vars(obj).get("__init__")):
        return obj.__init__.__doc__  # what help() shows for a class documented in its __init__
    if inspect.isclass(obj) or inspect.ismodule(obj):
        return doc if isinstance(doc, str) else None
    if inspect.isroutine(obj) or isinstance(obj, property):
        return inspect.getdoc(obj)  # a method without one inherits its base method's docstring
    return doc if isinstance(doc, str) and doc != getattr(type(obj), "__doc__", None) else None


def signature(obj: Any, drop_first: bool = False) -> inspect.Signature | None:
    """``inspect.signature(obj)``, without ``self`` when ``drop_first``; None when it has none."""
    try:
        found = inspect.signature(obj)
    except Exception:  # no signature (ValueError, TypeError), or one whose defaults cannot be evaluated
        return None
    parameters = list(found.parameters.values())
    if drop_first and parameters and parameters[0].kind <= inspect.Parameter.POSITIONAL_OR_KEYWORD:
        found = found.replace(parameters=parameters[1:])
    return found


def short_title(name: str, found: inspect.Signature | None, fallback: str | None = None) -> str:
    """``name(parameters)`` without annotations, the parameter list cut to fit ``TITLE_CHARS``.

    Example:
        >>> import inspect
        >>> def f(a: int, b=1, *, c: str = "x") -> None: ...
        >>> short_title("m.f", inspect.signature(f))
        "m.f(a, b=1, *, c='x')"
        >>> short_title("m.g", None, "(x, y)"), short_title("m.h", None), short_title("m.now", inspect.Signature())
        ('m.g(x, y)', 'm.h', 'm.now()')
    """
    if found is None:
        return f"{name}{fallback}" if fallback else name
    if not found.parameters:
        return f"{name}()"  # "(...)" would say that parameters were cut
    plain = found.replace(
        parameters=[p.replace(annotation=p.empty) for p in found.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )
    parameters = list(plain.parameters.values())
    for count in range(len(parameters), 0, -1):  # whole parameters only, as many as fit
        text = clean_doc(f"{name}{plain.replace(parameters=parameters[:count])}")
        if count < len(parameters):
            text = f"{text[:-1]}, ...)"
        if len(text) <= TITLE_CHARS:
            return text
    return f"{name}(...)"


def public_names(module: ModuleType, module_name: str) -> list[str]:
    """The names ``module`` exports: its ``__all__``, else public names it defines (not ones it imports)."""
    exported = getattr(module, "__all__", None)
    if isinstance(exported, (list, tuple)) and all(isinstance(n, str) for n in exported):
        names = [n for n in exported if hasattr(module, n)]
        return names + _exported_by_own_submodules(module, module_name, set(names))
    names = []
    for name, value in vars(module).items():
        origin = getattr(value, "__module__", None)
        if name.startswith("_") or inspect.ismodule(value):
            continue
        # builtins holds only its own names (open is io.open); elsewhere a name imported from a public
        # module is that module's to document.
        if module_name == "builtins" or origin is None or origin == module_name or _is_private_module(origin):
            names.append(name)
    return names


def _exported_by_own_submodules(package: ModuleType, package_name: str, listed: set[str]) -> list[str]:
    """Names a package binds from its own submodules' ``__all__`` but leaves out of its own ``__all__``
    (Python 3.11's ``asyncio`` forgets ``TaskGroup``): ``from .submodule import *`` is still its API."""
    if not hasattr(package, "__path__"):
        return []
    found = []
    for name, value in vars(package).items():
        if name.startswith("_") or name in listed or inspect.ismodule(value):
            continue
        origin = getattr(value, "__module__", None)
        if isinstance(origin, str) and origin.startswith(package_name + "."):
            if name in getattr(sys.modules.get(origin), "__all__", ()):
                found.append(name)
    return found


def _is_private_module(name: str) -> bool:
    return any(part.startswith("_") for part in name.split("."))


def kind_of(obj: Any) -> str | None:
    """``class``, ``function`` or ``data`` (an object with a docstring of its own), else None."""
    if inspect.isclass(obj):
        return "class"
    if inspect.isroutine(obj):
        return "function"
    if inspect.ismodule(obj) or own_doc(obj) is None:
        return None
    return "data"


def is_plain_datum(name: str, obj: Any) -> bool:
    """True for a module's value that people read although nothing documents it (``math.pi``,
    ``os.environ``, ``keyword.kwlist``): a lower-case name (PEP 8 writes a C API's constants in capitals,
    ``socket.AF_INET``: thousands of them, left out) holding a number, text or container.

    Example:
        >>> is_plain_datum("pi", 3.14), is_plain_datum("AF_INET", 2), is_plain_datum("__version__", "1.0")
        (True, False, False)
    """
    return name[:1].islower() and isinstance(obj, PLAIN_DATA) and not callable(obj)


def glossary(module_name: str, doc: str) -> Iterator[tuple[str, str]]:
    """(attribute, description) for data a module's docstring lists, in either of two styles.

    Example:
        >>> list(glossary("sys", "argv -- command line arguments\\nnot -- this one")) == [
        ...     ("argv", "command line arguments"), ("not", "this one")]
        True
        >>> list(glossary("os", "  - os.sep is the pathname separator ('/')"))
        [('sep', "os.sep is the pathname separator ('/')")]
    """
    for line in doc.splitlines():
        match = _GLOSSARY_LINE.match(line)
        if match and match["name"]:
            yield match["name"], match["text"].strip()
        elif match and match["module"] == module_name:
            yield match["attr"], line.strip().removeprefix("- ")


def defined_in(obj: Any) -> str:
    """Where an object is defined: ``module.qualname`` as the object itself says.

    Example:
        >>> import json
        >>> defined_in(json.dumps), defined_in(json.decoder.JSONDecoder.decode)
        ('json.dumps', 'json.decoder.JSONDecoder.decode')
    """
    owner = getattr(obj, "__objclass__", None) or getattr(obj, "__self__", None)  # C methods name no module
    module = getattr(obj, "__module__", None) or getattr(owner, "__module__", "")
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "")
    return f"{module}.{qualname}" if module and qualname else qualname  # "" for a value (os.environ)


def class_members(cls: type) -> Iterator[tuple[str, Any, str, bool, str | None]]:
    """(name, member, kind, drop_first, inherited_from) for a class's public methods and documented
    attributes: its own, and those of the bases documented through it (see :func:`documented_bases`).

    Example:
        >>> import datetime
        >>> [m[0] for m in class_members(datetime.datetime) if m[0] in ("strftime", "now")]
        ['now', 'strftime']
    """
    included = documented_bases(cls)
    seen: set[str] = set()
    for owner in cls.__mro__:
        for name, raw in sorted(vars(owner).items()):
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)  # a name defined lower in the MRO is shadowed, whether documented or not
            kind, member, drop_first = _member(cls, name, raw)
            if owner in included and kind:
                inherited = None if owner is cls else f"{owner.__module__}.{owner.__qualname__}"
                yield name, member, kind, drop_first, inherited


def documented_bases(cls: type) -> set[type]:
    """The class, with the bases whose members its documents repeat: bases that have no documents of
    their own (private: ``socket.socket`` repeats ``_socket.socket``'s methods) and, when the class
    adds methods of its own, C types of its module (``datetime.datetime`` repeats
    ``datetime.date.strftime``, as the library reference does). Python bases of the same module
    (``imaplib.IMAP4`` of ``IMAP4_SSL``), bases from other modules, builtins (``dict``,
    ``Exception``) and ``object`` are documented under their own names only.
    """
    adds_methods = any(not n.startswith("_") and inspect.isroutine(v) for n, v in vars(cls).items())
    included = {cls}
    for base in cls.__mro__[1:]:
        module = getattr(base, "__module__", "") or ""
        if base is object or module == "builtins":
            continue
        private = base.__name__.startswith("_") or _is_private_module(module)
        c_type = not base.__flags__ & _HEAP_TYPE
        if private or (adds_methods and c_type and module == cls.__module__):
            included.add(base)
    return included


def _member(cls: type, name: str, raw: Any) -> tuple[str | None, Any, bool]:
    """(kind, the object to document, whether its signature starts with self) for one class attribute."""
    if isinstance(raw, staticmethod):
        return "method", raw.__func__, False
    if isinstance(raw, functools.cached_property):
        return "data", raw, False
    if isinstance(raw, classmethod) or type(raw).__name__ == "classmethod_descriptor":
        return "method", getattr(cls, name), False
    if inspect.isfunction(raw) or inspect.ismethoddescriptor(raw):
        return "method", raw, True
    if (isinstance(raw, property) or inspect.isdatadescriptor(raw)) and clean_doc(getattr(raw, "__doc__", None)):
        return "data", raw, False
    return None, raw, False
