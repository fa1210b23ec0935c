"""How often the standard library's own code uses each public name: a popularity prior for ranking.

Everyday questions ("read a file line by line") are answered by a few names everybody uses
(``open``, ``os.path.join``, ``json.dumps``), yet the towers alone cannot tell them from the
thousands of rarely used methods whose docstrings say much the same (``fileinput.filelineno``).
Web search met the same problem with static document priors (PageRank). Our equivalent is usage:
how many times the interpreter's own library, test suite included, refers to a name. The counts
are read from the source with :mod:`ast` (nothing of the library is run), in a child process beside
the extraction's (:func:`main`), and stored in each document's metadata as ``usage``; the default
index adds a weight of its log to every score (:mod:`dualsearch.ranking.priors`).

What is counted, per file (``import``/``from`` aliases resolved, so ``from json import dumps as d;
d(x)`` counts ``json.dumps``):

- every reference to a module-level name reached from an imported module (``os.path.join``,
  ``json.dumps``); a module's own usage is the number of files that import it;
- every load of a builtin's name (``len``, ``open``, ``enumerate``);
- attribute names reached from anything else (``text.split``), which cannot be resolved to a class
  without running the code: a method's usage is the smaller of its class's usage and its name's
  (``min``: ``list.append`` is common on both counts, ``json.JSONEncoder.encode`` shares a common
  name with ``str.encode`` but not its class's use).
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

BUILTINS = frozenset(dir(builtins))


@dataclass
class UsageCounts:
    """``names``: references per dotted public name (builtins as ``builtins.len``); ``attributes``:
    attribute loads per name on objects that are not modules."""

    names: Counter = field(default_factory=Counter)
    attributes: Counter = field(default_factory=Counter)
    files: int = 0
    imports: Counter = field(default_factory=Counter)  # files that import each module

    def add_source(self, source: str | bytes) -> None:
        """Count one module's references (a file that does not parse is skipped by the caller).

        Example:
            >>> counts = UsageCounts()
            >>> counts.add_source("import os\\nfrom json import dumps as d\\nos.path.join(a, b)\\nd(x)\\nlen(s)")
            >>> counts.add_source("s.split()")
            >>> counts.names["os.path.join"], counts.names["json.dumps"], counts.names["builtins.len"]
            (1, 2, 1)
            >>> counts.attributes["split"], counts.attributes["join"]
            (1, 0)
        """
        tree = ast.parse(source)
        aliases, modules = _imports(tree, self.names)
        self.imports.update(modules)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                dotted = _dotted(node, aliases)
                if dotted:
                    self.names[dotted] += 1
                else:
                    self.attributes[node.attr] += 1
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if node.id in aliases:
                    self.names[aliases[node.id]] += 1
                elif node.id in BUILTINS:
                    self.names[f"builtins.{node.id}"] += 1
        self.files += 1

    @classmethod
    def from_json(cls, payload: dict) -> UsageCounts:
        """The counts :func:`main` printed."""
        return cls(
            Counter(payload["names"]), Counter(payload["attributes"]), payload["files"], Counter(payload["imports"])
        )

    @classmethod
    def merged(cls, parts: Iterable[UsageCounts]) -> UsageCounts:
        """The sum of counts over disjoint sets of files."""
        total = cls()
        for part in parts:
            total.names.update(part.names)
            total.attributes.update(part.attributes)
            total.imports.update(part.imports)
            total.files += part.files
        return total

    def of_name(self, public_name: str, defined_in: str = "") -> int:
        """References to a module-level name: through its public name and where it is defined
        (``os.path.join`` and ``posixpath.join``); a name without a module is a builtin."""
        public = public_name if "." in public_name else f"builtins.{public_name}"
        count = self.names[public]
        if defined_in and defined_in not in (public_name, public):
            count += self.names[defined_in]
        return count

    def of_member(self, class_name: str, member: str) -> int:
        """A method's or attribute's usage: the smaller of its class's and its name's (see above)."""
        return min(self.of_name(class_name), self.attributes[member])


def _imports(tree: ast.AST, names: Counter) -> tuple[dict[str, str], set[str]]:
    """One pass over the module's absolute imports: local name → dotted name (a name imported from a
    module counts as a reference), and the modules imported (``import a.b`` and ``from a.b import c``
    both import ``a`` and ``a.b``)."""
    aliases: dict[str, str] = {}
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                modules.update(_prefixes(alias.name))
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:  # ``import os.path`` binds ``os``
                    aliases[parts[0]] = parts[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.update(_prefixes(node.module))
            for alias in node.names:
                if alias.name != "*":
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                    names[f"{node.module}.{alias.name}"] += 1
    return aliases, modules


def _prefixes(dotted: str) -> list[str]:
    """``a``, ``a.b``, ``a.b.c`` for ``a.b.c``."""
    parts = dotted.split(".")
    return [".".join(parts[: end + 1]) for end in range(len(parts))]


def _dotted(node: ast.Attribute, aliases: dict[str, str]) -> str | None:
    """``os.path.join`` for an attribute chain rooted at an imported name, else None."""
    parts = [node.attr]
    value = node.value
    while isinstance(value, ast.Attribute):
        parts.append(value.attr)
        value = value.value
    if isinstance(value, ast.Name) and value.id in aliases:
        return ".".join([aliases[value.id], *reversed(parts)])
    return None


def stdlib_sources(root: Path | None = None) -> Iterable[Path]:
    """Every ``.py`` file of the standard library (tests included), installed packages excluded."""
    root = Path(root or Path(os.__file__).parent)
    for path in sorted(root.rglob("*.py")):
        if "site-packages" not in path.relative_to(root).parts:
            yield path


def count_usage(paths: Iterable[Path]) -> UsageCounts:
    """Usage over ``paths``; files that do not parse (test data with bad syntax) are skipped."""
    counts = UsageCounts()
    for path in paths:
        try:
            counts.add_source(path.read_bytes())
        except (SyntaxError, ValueError, OSError, RecursionError):
            continue
    return counts


def document_usage(doc_id: str, defined_in: str, counts: UsageCounts, classes: set[str]) -> int:
    """The ``usage`` of the document ``kind:name``: members of a documented class by
    :meth:`UsageCounts.of_member`, language topics 0, everything else by name.

    Example:
        >>> counts = UsageCounts()
        >>> counts.add_source("import random\\nrandom.choice(x)\\nrandom.choice(y)\\nr = random.Random()\\nr.choice(z)")
        >>> document_usage("function:random.choice", "random.Random.choice", counts, {"random.Random"})
        2
        >>> document_usage("method:random.Random.choice", "", counts, {"random.Random"})
        1
        >>> document_usage("topic:for", "", counts, set()), document_usage("module:random", "", counts, set())
        (0, 1)
    """
    kind, name = doc_id.split(":", 1)
    if kind == "topic":
        return 0
    if kind == "module":  # a module is used where it is imported; its members count for themselves
        return counts.imports[name]
    owner, _, member = name.rpartition(".")
    if kind == "method" or (kind == "data" and owner in classes):
        return counts.of_member(owner, member)
    return counts.of_name(name, defined_in)


def main() -> None:
    """Print the usage counts of this interpreter's library as JSON (run in child processes by
    :func:`dualsearch.corpora.stdlib_docs.extract`, beside the extraction). Arguments ``SHARE COUNT``
    count every COUNT-th file from the SHARE-th (0-based), so children can split the work."""
    share, shares = (int(argument) for argument in sys.argv[1:3]) if len(sys.argv) > 2 else (0, 1)
    counts = count_usage(list(stdlib_sources())[share::shares])
    fields = {"names": counts.names, "attributes": counts.attributes, "files": counts.files, "imports": counts.imports}
    json.dump(fields, sys.stdout)
