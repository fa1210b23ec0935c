"""Pairs of a description from the Python library reference and the default corpus's document it describes.

The default corpus is built from docstrings, which are terse ("A list-like sequence optimized for data
accesses near its endpoints."). The library reference describes the same objects in other, often
plainer words ("appends and pops from either side of the deque"). Each (reference description,
document) pair teaches the towers that both wordings mean one thing, as the anchors (a docstring's
own summary → its document) cannot. The rules:

1. A description belongs to an object directive: ``.. function::``, ``.. class::``, ``.. method::``,
   ``.. classmethod::``, ``.. staticmethod::``, ``.. exception::``, ``.. data::``, ``.. attribute::``,
   ``.. decorator::``, ``.. decoratormethod::``, ``.. coroutinefunction::`` or ``.. coroutinemethod::``.
2. Its full dotted name: a directive's name is read under the module the last ``.. module::`` or
   ``.. currentmodule::`` names (``basename`` under ``os.path`` → ``os.path.basename``; ``Path.iterdir``
   under ``pathlib`` → ``pathlib.Path.iterdir``), and a directive nested (indented) inside a
   ``.. class::`` or ``.. exception::`` is that class's member (``update`` inside ``dict`` → ``dict.update``).
   A name that already starts with its module is taken as it is.
3. The description is the first paragraph of the directive's content, after the signature lines and
   options; a paragraph that opens another directive (``.. versionadded::``) gives none. Sphinx roles
   become their text (``:func:`~os.path.split``` → ``split``), literal and emphasis marks go, and it is
   cut after :data:`SENTENCES` sentences or :data:`MAX_CHARS` characters.
4. The name is matched to corpus ids as the FAQ's targets are (:func:`dualsearch.corpora.stdlib_faq.
   ids_by_name`: the full dotted name, whatever kind the directive says); a directive the corpus
   does not have gives no pair.

The sources are the ``library/*.rst`` files of a CPython checkout's ``Doc/`` or the ``_sources/library/
*.rst.txt`` a built documentation carries (Debian's ``python3.X-doc``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from dualsearch.corpora.stdlib_faq import ids_by_name

SENTENCES = 2  # the opening sentences say what the object is for; what follows is detail
MAX_CHARS = 300
OBJECT_DIRECTIVES = ("function", "class", "method", "classmethod", "staticmethod", "exception", "data", "attribute",
                     "decorator", "decoratormethod", "coroutinefunction", "coroutinemethod")  # fmt: skip
CLASS_DIRECTIVES = ("class", "exception")
_DIRECTIVE = re.compile(r"^(?P<indent> *)\.\. (?P<kind>[\w-]+)::\s*(?P<argument>.*)$")
_ROLE = re.compile(r":[\w:-]+:`(?P<body>[^`]+)`")
_EXPLICIT_TITLE = re.compile(r"^(?P<title>.*?)\s*<[^>]*>$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def role_text(body: str) -> str:
    """What a Sphinx role shows: its explicit title, else its target (``~``: the last component).

    Example:
        >>> role_text("~os.path.split"), role_text("the split function <os.path.split>"), role_text("!open")
        ('split', 'the split function', 'open')
    """
    titled = _EXPLICIT_TITLE.match(body)
    if titled:
        return titled.group("title")
    if body.startswith("~"):
        return body[1:].split(".")[-1]
    return body.lstrip("!")


def plain_text(paragraph: str, sentences: int = SENTENCES, limit: int = MAX_CHARS) -> str:
    """A reStructuredText paragraph as plain words: roles as their text, no markup, its first sentences.

    Example:
        >>> plain_text("Return the *base name* of ``path``.  See :func:`~os.path.split`.  More detail.")
        'Return the base name of path. See split.'
    """
    text = _ROLE.sub(lambda match: role_text(match.group("body")), paragraph)
    text = " ".join(text.replace("``", "").replace("**", "").replace("*", "").split())
    text = " ".join(_SENTENCE_END.split(text)[:sentences])
    return text[:limit].rstrip(":").strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def first_paragraph(lines: list[str], start: int, indent: int) -> str:
    """The first paragraph of the content of the directive at ``lines[start]`` (indented past ``indent``),
    after its signature lines and options; "" when there is none or it opens another directive."""
    number = start + 1
    while number < len(lines) and lines[number].strip() and _indent(lines[number]) > indent:
        number += 1  # signature continuation lines and options, up to the first blank line
    while number < len(lines) and not lines[number].strip():
        number += 1
    paragraph = []
    while number < len(lines) and lines[number].strip() and _indent(lines[number]) > indent:
        paragraph.append(lines[number].strip())
        number += 1
    if not paragraph or paragraph[0].startswith(".. "):
        return ""
    return " ".join(paragraph)


def full_name(name: str, module: str | None, classes: list[tuple[int, str]], kind: str) -> str:
    """A directive's dotted name in its module and enclosing class (rule 2).

    Example:
        >>> full_name("update", None, [(0, "dict")], "method"), full_name("basename", "os.path", [], "function")
        ('dict.update', 'os.path.basename')
        >>> full_name("Path.iterdir", "pathlib", [], "method"), full_name("os.getcwd", "os", [], "function")
        ('pathlib.Path.iterdir', 'os.getcwd')
    """
    if classes and kind not in CLASS_DIRECTIVES and "." not in name:
        return f"{classes[-1][1]}.{name}"
    if module and not name.startswith(module + "."):
        return f"{module}.{name}"
    return name


def descriptions(text: str) -> Iterator[tuple[str, str]]:
    """``(full dotted name, description)`` of every object directive of one reference source with one.

    Example:
        >>> source = '''.. module:: os.path
        ...
        ... .. function:: basename(path)
        ...
        ...    Return the base name of pathname *path*.  This is the second element.  More.
        ...
        ... .. class:: Thing(x)
        ...    :noindex:
        ...
        ...    A thing.
        ...
        ...    .. method:: grow(n)
        ...
        ...       Make the thing *n* times larger.
        ... '''
        >>> list(descriptions(source))  # doctest: +NORMALIZE_WHITESPACE
        [('os.path.basename', 'Return the base name of pathname path. This is the second element.'),
         ('os.path.Thing', 'A thing.'), ('os.path.Thing.grow', 'Make the thing n times larger.')]
    """
    lines = text.splitlines()
    module: str | None = None
    classes: list[tuple[int, str]] = []  # (indent, full name) of the enclosing class directives
    for number, line in enumerate(lines):
        directive = _DIRECTIVE.match(line)
        if not directive:
            continue
        indent, kind, argument = len(directive.group("indent")), directive.group("kind"), directive.group("argument")
        if kind in ("module", "currentmodule"):
            module, classes = argument.strip() or None, []
            continue
        if kind not in OBJECT_DIRECTIVES or not argument.strip():
            continue
        classes = [(level, name) for level, name in classes if level < indent]
        name = full_name(re.split(r"[(\s\[]", argument.strip())[0], module, classes, kind)
        if kind in CLASS_DIRECTIVES:
            classes.append((indent, name))
        description = plain_text(first_paragraph(lines, number, indent))
        if description:
            yield name, description


def reference_files(source_dir: Path) -> list[Path]:
    """The library reference's source files under a documentation source directory."""
    return sorted((Path(source_dir) / "library").glob("*.rst*"))


def reference_pairs(source_dir: Path, corpus_ids: Iterable[str]) -> list[tuple[str, list[str]]]:
    """Every library-reference description of an object the corpus documents, with its document ids
    (rule 4), in the order of the sources."""
    files = reference_files(source_dir)
    if not files:
        raise FileNotFoundError(f"no library reference under {Path(source_dir) / 'library'} (*.rst or *.rst.txt)")
    by_name = ids_by_name(corpus_ids)
    pairs = []
    for path in files:
        for name, description in descriptions(path.read_text(encoding="utf-8")):
            if name in by_name:
                pairs.append((description, sorted(by_name[name])))
    return pairs
