"""Pairs of a question from the Python FAQ and the standard-library documents its answer names.

The FAQ's section titles are questions ("How do I copy a file?") and their answers name what to use
with Sphinx roles (``:func:`shutil.copyfile```). Each question whose answer names documents of the
default corpus gives (question, those documents). The rules:

1. A section is a title line underlined with one punctuation character repeated; only titles ending
   in ``?`` are questions.
2. The roles read are ``:func:``, ``:meth:``, ``:class:``, ``:mod:``, ``:data:``, ``:attr:`` and
   ``:exc:``, with or without ``~``, ``!``, an explicit title (``:func:`title <target>```) or ``()``.
3. A target is matched to a corpus id by its full dotted name (``shutil.copyfile`` →
   ``function:shutil.copyfile``; ``sorted`` → ``function:sorted``), whatever the role says its kind
   is (the FAQ calls ``reversed`` a function; the corpus documents it as a class). Targets the corpus
   does not have are dropped; a question with none gives no pair.

The sources are reStructuredText files: a CPython checkout's ``Doc/faq/*.rst``, or the
``_sources/faq/*.rst.txt`` a built documentation carries (Debian's ``python3.X-doc``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from dualsearch.corpora.stdlib_questions import KINDS

_UNDERLINE = re.compile(r"^([=\-~^\"'*+#])\1{3,}\s*$")
_ROLE = re.compile(r":(?:func|meth|class|mod|data|attr|exc):`[~!]?(?:[^`<]*<)?[~!]?([\w.]+?)(?:\(\))?>?`")


def faq_files(source_dir: Path) -> list[Path]:
    """The FAQ's source files under a documentation source directory (``faq/*.rst`` or ``*.rst.txt``)."""
    faq = Path(source_dir) / "faq"
    return sorted(path for path in faq.glob("*.rst*") if path.name.split(".")[0] != "index")


def question_sections(text: str) -> list[tuple[str, str]]:
    """``(title, body)`` of every section whose title is a question.

    Example:
        >>> question_sections("How do I copy a file?\\n---------------------\\n\\nUse :func:`shutil.copy`.\\n")
        [('How do I copy a file?', '\\nUse :func:`shutil.copy`.')]
    """
    lines = text.splitlines()
    sections: list[tuple[str, list[str]]] = []
    for number, line in enumerate(lines):
        following = lines[number + 1] if number + 1 < len(lines) else ""
        if _UNDERLINE.match(line):
            continue
        if line.strip() and _UNDERLINE.match(following):
            sections.append((line.strip(), []))
        elif sections:
            sections[-1][1].append(line)
    return [(title, "\n".join(body)) for title, body in sections if title.endswith("?")]


def referenced_ids(body: str, corpus_ids: Iterable[str]) -> list[str]:
    """The corpus ids a section's roles name, in id order.

    Example:
        >>> ids = ["function:shutil.copyfile", "module:shutil", "class:reversed", "topic:copy"]
        >>> referenced_ids(":func:`~shutil.copyfile`, :mod:`shutil` and :func:`reversed`", ids)
        ['class:reversed', 'function:shutil.copyfile', 'module:shutil']
    """
    by_name = ids_by_name(corpus_ids)
    found = {corpus_id for name in _ROLE.findall(body) for corpus_id in by_name.get(name, [])}
    return sorted(found)


def ids_by_name(corpus_ids: Iterable[str]) -> dict[str, list[str]]:
    """Corpus ids by their full dotted name, for the kinds a role can name (rule 3).

    Example:
        >>> ids_by_name(["class:reversed", "topic:copy", "function:shutil.copyfile"])
        {'reversed': ['class:reversed'], 'shutil.copyfile': ['function:shutil.copyfile']}
    """
    by_name: dict[str, list[str]] = {}
    for corpus_id in corpus_ids:
        kind, _, name = corpus_id.partition(":")
        if kind in KINDS:
            by_name.setdefault(name, []).append(corpus_id)
    return by_name


def faq_pairs(source_dir: Path, corpus_ids: Iterable[str]) -> list[tuple[str, list[str]]]:
    """Every FAQ question under ``source_dir`` whose answer names corpus documents, with those documents."""
    corpus_ids = list(corpus_ids)
    files = faq_files(source_dir)
    if not files:
        raise FileNotFoundError(f"no FAQ sources under {Path(source_dir) / 'faq'} (faq/*.rst or faq/*.rst.txt)")
    pairs = []
    for path in files:
        for title, body in question_sections(path.read_text(encoding="utf-8")):
            documents = referenced_ids(body, corpus_ids)
            if documents:
                pairs.append((title, documents))
    return pairs
