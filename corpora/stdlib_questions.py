"""Pairs of a Python question and the standard-library documents its answer uses (CoNaLa → default corpus).

CoNaLa's curated set gives Stack Overflow questions, each with the snippet that answers it. The
documents a snippet *uses* are what a user asking that question wants to read, so each (question,
document) is a training pair for the default index's query tower. :func:`snippet_documents` reads
a snippet with :mod:`ast` (nothing is run) and keeps only ids the corpus has. The rules:

1. **Modules and what they hold**, called or not: ``os.path.dirname(p)`` → ``function:os.path.dirname``,
   ``sys.argv`` → ``data:sys.argv``, ``collections.Counter(x)`` → ``class:collections.Counter``;
   ``import``/``from`` aliases are followed (``from datetime import datetime as dt; dt.now()``). Snippets
   rarely show their imports, so a dotted name whose root is a standard-library module counts as
   that module; when a module shares its name with one of its classes and the dotted name is not a
   member of the module, the class is tried (``datetime.strptime`` → ``method:datetime.datetime.strptime``).
   A module is a document of its own only when nothing more precise in it is used.
2. **Builtins**: a call of a builtin function or class, ``sorted(x)`` → ``function:sorted``, ``dict(x)`` →
   ``class:dict``. ``print`` is dropped when anything else is found: it shows a result, it is not the answer.
3. **Methods on literals**: ``''.join(x)`` → ``method:str.join``, ``[].append``, ``{}.update``, ``b''.decode``.
4. **Methods on variables whose type the snippet or the question makes clear**: a name bound in the
   snippet to a literal, a comprehension or a call whose result type is known (``open`` → a text
   file, ``re.compile`` → ``re.Pattern``, ``re.match`` → ``re.Match``, ``datetime.datetime.now`` →
   ``datetime.datetime``), or named in the question after its type ("string `s`", "list `a`",
   "dictionary `d`"). A method is looked up along the class's MRO as the corpus names it
   (``f.readlines()`` on a text file → ``method:io.IOBase.readlines``). A builtin class's name as the
   receiver is that class (``str.strip(line)`` → ``method:str.strip``).
5. **2to3's wrappers are not answers**: CoNaLa's snippets went through 2to3, which wrapped Python 2
   code in ``list()`` (``list(d.items())``, ``list(map(f, x))``); such a ``list`` call is not counted.

Anything else (methods on values of unknown type, third-party libraries) maps to nothing, and a
question whose snippet maps to nothing gives no pair.
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

KINDS = ("function", "class", "method", "data", "module")
LITERAL_TYPES = {ast.JoinedStr: "str", ast.List: "list", ast.ListComp: "list", ast.Dict: "dict", ast.DictComp: "dict",
                 ast.Set: "set", ast.SetComp: "set", ast.Tuple: "tuple"}  # fmt: skip
# What a call returns, for the calls snippets bind to a variable and then use (rule 4).
RETURN_TYPES = {
    "open": "io.TextIOWrapper",
    "str": "str",
    "list": "list",
    "dict": "dict",
    "set": "set",
    "sorted": "list",
    "re.compile": "re.Pattern",
    "re.match": "re.Match",
    "re.search": "re.Match",
    "re.fullmatch": "re.Match",
    "datetime.datetime.now": "datetime.datetime",
    "datetime.datetime.strptime": "datetime.datetime",
    "datetime.datetime.today": "datetime.datetime",
    "datetime.datetime.utcnow": "datetime.datetime",
    "datetime.date.today": "datetime.date",
    "collections.Counter": "collections.Counter",
    "collections.defaultdict": "collections.defaultdict",
    "collections.OrderedDict": "collections.OrderedDict",
    "collections.deque": "collections.deque",
}
# "string `s`", "list of strings `words`", "dictionary `d`": a type word shortly before a backquoted name.
QUESTION_TYPES = {"string": "str", "str": "str", "list": "list", "lists": "list", "dictionary": "dict",
                  "dict": "dict", "set": "set", "tuple": "tuple", "file": "io.TextIOWrapper"}  # fmt: skip
_NAMED_IN_QUESTION = re.compile(r"\b(" + "|".join(QUESTION_TYPES) + r")\s+(?:of\s+\w+\s+)?[`'](\w+)[`']", re.IGNORECASE)
# 2to3 wrapped Python 2 code in list(): list(d.items()), list(map(...)). Those calls are not the answer.
TWO_TO_THREE_WRAPPED = frozenset({"items", "keys", "values", "map", "filter", "zip", "range"})
SHOW_ONLY = "function:print"


@dataclass(frozen=True)
class QuestionPairs:
    """One question's queries (its title and a person's rewording, when there is one) and the
    documents its snippet uses."""

    question_id: int | str  # CoNaLa's number; other sources name theirs (``faq-3``)
    queries: tuple[str, ...]
    documents: tuple[str, ...]


def snippet_documents(snippet: str, question: str, corpus_ids: Mapping[str, str] | Iterable[str]) -> list[str]:
    """Ids of the corpus documents ``snippet`` uses (rules in the module docstring), in first-use order.

    Example:
        >>> ids = {"method:str.join", "function:sorted", "function:os.path.basename", "module:os"}
        >>> snippet_documents("print(', '.join(sorted(os.path.basename(p) for p in x)))", "", ids)
        ['method:str.join', 'function:sorted', 'function:os.path.basename']
    """
    known = set(corpus_ids)
    tree = _parse(snippet)
    if tree is None:
        return []
    reader = _SnippetReader(known, _question_types(question))
    reader.visit(tree)
    found = list(dict.fromkeys(reader.found))
    precise_modules = {
        doc_id.split(":", 1)[1].rsplit(".", 1)[0] for doc_id in found if not doc_id.startswith("module:")
    }
    found = [
        doc_id for doc_id in found if not (doc_id.startswith("module:") and _module_covered(doc_id, precise_modules))
    ]
    if len(found) > 1 and SHOW_ONLY in found:
        found.remove(SHOW_ONLY)
    return found


def question_pairs(records: Sequence[Mapping], corpus_ids: Iterable[str]) -> list[QuestionPairs]:
    """CoNaLa records grouped by ``question_id``: every distinct intent and rewritten intent as a query,
    every document any of its snippets uses; questions that map to nothing are left out."""
    known = set(corpus_ids)
    queries: dict[int, dict[str, None]] = {}
    documents: dict[int, dict[str, None]] = {}
    for record in records:
        question_id = int(record["question_id"])
        texts = [
            text.strip() for text in (record.get("intent"), record.get("rewritten_intent")) if text and text.strip()
        ]
        queries.setdefault(question_id, {}).update(dict.fromkeys(texts))
        used = snippet_documents(record.get("snippet") or "", " ".join(texts), known)
        documents.setdefault(question_id, {}).update(dict.fromkeys(used))
    return [
        QuestionPairs(question_id, tuple(queries[question_id]), tuple(documents[question_id]))
        for question_id in queries
        if documents[question_id] and queries[question_id]
    ]


def _module_covered(module_id: str, precise_modules: set[str]) -> bool:
    module = module_id.split(":", 1)[1]
    return any(name == module or name.startswith(module + ".") for name in precise_modules)


def _parse(snippet: str) -> ast.AST | None:
    for text in (snippet, snippet.replace("\\n", "\n")):
        try:
            return ast.parse(text)
        except (SyntaxError, ValueError):
            continue
    return None


def _question_types(question: str) -> dict[str, str]:
    types = {}
    for word, name in _NAMED_IN_QUESTION.findall(question):
        kind = QUESTION_TYPES.get(word.lower())
        if kind is not None:
            types.setdefault(name, kind)
    return types


class _SnippetReader(ast.NodeVisitor):
    def __init__(self, known: set[str], variable_types: dict[str, str]) -> None:
        self.known = known
        self.aliases: dict[str, str] = {}  # local name -> dotted standard-library name
        self.types = dict(variable_types)  # variable -> dotted type name
        self.found: list[str] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.aliases[alias.asname] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if node.module and alias.name != "*":
                self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def visit_Assign(self, node: ast.Assign) -> None:
        kind = self._value_type(node.value)
        for target in node.targets:
            if kind and isinstance(target, ast.Name):
                self.types[target.id] = kind
        self.generic_visit(node)

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            kind = self._value_type(item.context_expr)
            if kind and isinstance(item.optional_vars, ast.Name):
                self.types[item.optional_vars.id] = kind
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        function = node.func
        if isinstance(function, ast.Name) and function.id not in self.aliases and hasattr(builtins, function.id):
            if function.id == "list" and _wraps_for_2to3(node):
                self.generic_visit(node)
                return
            self._add_first(f"{kind}:{function.id}" for kind in ("function", "class"))
        elif isinstance(function, ast.Attribute):
            receiver_type = self._value_type(function.value)
            if receiver_type is not None:
                self._add_method(receiver_type, function.attr)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        owner = node.value
        if (
            isinstance(owner, ast.Name)
            and owner.id not in self.types
            and isinstance(getattr(builtins, owner.id, None), type)
        ):
            self._add_method(owner.id, node.attr)  # str.strip(line), dict.fromkeys(keys)
            return
        dotted = self._dotted(node)
        if dotted is not None and self._add_dotted(dotted):
            return  # the longest name found; its prefixes are not documents of their own
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        target = self.aliases.get(node.id)
        if target is not None:
            self._add_dotted(target)

    def _add_dotted(self, dotted: str) -> bool:
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            name = ".".join(parts[:end])
            candidates = [name]
            head = parts[0]
            if end >= 2 and parts[1] != head:  # datetime.strptime -> datetime.datetime.strptime
                candidates.append(".".join([head, head, *parts[1:end]]))
            for candidate in candidates:
                if self._add_first(f"{kind}:{candidate}" for kind in KINDS):
                    return True
        return False

    def _add_method(self, type_name: str, attribute: str) -> None:
        for owner in _owners(type_name):
            if self._add_first([f"method:{owner}.{attribute}"]):
                return

    def _add_first(self, ids: Iterable[str]) -> bool:
        for doc_id in ids:
            if doc_id in self.known:
                self.found.append(doc_id)
                return True
        return False

    def _dotted(self, node: ast.AST) -> str | None:
        """``os.path.join`` for that attribute chain when its root is a standard-library module or an
        alias of a standard-library name; None otherwise."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        root = self.aliases.get(node.id)
        if root is None:
            if node.id not in sys.stdlib_module_names or node.id in self.types:
                return None
            root = node.id
        return ".".join([root, *reversed(parts)])

    def _value_type(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant):
            return {str: "str", bytes: "bytes"}.get(type(node.value))
        for literal, kind in LITERAL_TYPES.items():
            if isinstance(node, literal):
                return kind
        if isinstance(node, ast.Name):
            return self.types.get(node.id)
        if isinstance(node, ast.Call):
            function = node.func
            name = function.id if isinstance(function, ast.Name) else self._dotted(function)
            if isinstance(function, ast.Name) and function.id in self.aliases:
                name = self.aliases[function.id]
            if name is not None:
                if name.count(".") == 1 and name.split(".")[0] == "datetime" and name not in RETURN_TYPES:
                    name = "datetime." + name  # datetime.now() with `from datetime import datetime` omitted
                return RETURN_TYPES.get(name)
        return None


def _wraps_for_2to3(call: ast.Call) -> bool:
    """Whether ``list(...)`` only wraps a call 2to3 wrapped (``list(d.items())``, ``list(map(f, x))``)."""
    if len(call.args) != 1 or not isinstance(call.args[0], ast.Call):
        return False
    inner = call.args[0].func
    name = inner.attr if isinstance(inner, ast.Attribute) else getattr(inner, "id", None)
    return name in TWO_TO_THREE_WRAPPED


def _owners(type_name: str) -> list[str]:
    """The corpus's names of ``type_name`` and its bases, most derived first (``io.TextIOWrapper``,
    ``io.TextIOBase``, ``io.IOBase``): a method is documented on the class that defines it."""
    cls = _resolve_class(type_name)
    if cls is None:
        return [type_name]
    names = []
    for base in cls.__mro__:
        if base is object:
            continue
        # C bases are documented under their public names: _io._IOBase is io.IOBase
        module, name = base.__module__.lstrip("_"), base.__qualname__.lstrip("_")
        names.append(name if module == "builtins" else f"{module}.{name}")
    return names or [type_name]


def _resolve_class(type_name: str) -> type | None:
    import importlib

    module_name, _, class_name = type_name.rpartition(".")
    try:
        owner = importlib.import_module(module_name) if module_name else builtins
    except ImportError:
        return None
    cls = getattr(owner, class_name, None)
    return cls if isinstance(cls, type) else None
