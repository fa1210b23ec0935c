"""Pairs from the library reference (dualsearch.corpora.stdlib_reference): descriptions, the names they describe."""

from __future__ import annotations

import pytest

from dualsearch.corpora.stdlib_reference import descriptions, reference_pairs

REFERENCE = """\
:mod:`collections` --- Container datatypes
==========================================

.. module:: collections
   :synopsis: Container datatypes

.. class:: deque([iterable, [maxlen]])

   Returns a new deque object initialized left-to-right.

   Deques support appends and pops from either side.

   .. method:: append(x)

      Add *x* to the right side of the deque.

   .. attribute:: maxlen

      .. versionadded:: 3.1

.. function:: namedtuple(typename, field_names, *, rename=False, defaults=None, \\
                         module=None)

   Returns a new tuple subclass named *typename*.  Fields are reached by name.  More detail follows
   here.

.. currentmodule:: os.path

.. function:: basename(path)
              basename(path, /)
   :noindex:

   Return the base name of pathname *path*, as :func:`~os.path.split` gives it.

.. method:: Thing.grow(n)

   Made up: the corpus below has no such thing.

.. exception:: Oops

   Raised by :class:`Thing <os.path.Thing>` when it :meth:`!grow`\\ s too much.

   .. attribute:: reason

      Why it went wrong.

.. function:: after_exception()

   Not a member of Oops: back at the module's level.
"""


def test_each_directive_is_named_in_its_module_and_class_and_keeps_its_first_paragraph():
    found = dict(descriptions(REFERENCE))
    assert found["collections.deque"] == "Returns a new deque object initialized left-to-right."
    assert found["collections.deque.append"] == "Add x to the right side of the deque."
    assert found["collections.namedtuple"] == "Returns a new tuple subclass named typename. Fields are reached by name."
    assert found["os.path.basename"] == "Return the base name of pathname path, as split gives it."
    assert found["os.path.Thing.grow"] == "Made up: the corpus below has no such thing."
    assert found["os.path.Oops"].startswith("Raised by Thing when it grow")
    assert found["os.path.Oops.reason"] == "Why it went wrong."
    assert found["os.path.after_exception"] == "Not a member of Oops: back at the module's level."
    assert "collections.deque.maxlen" not in found  # its content opens with another directive


def test_pairs_keep_what_the_corpus_documents_under_any_kind(tmp_path):
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "collections.rst.txt").write_text(REFERENCE, encoding="utf-8")
    ids = ["class:collections.deque", "method:collections.deque.append", "function:os.path.basename",
           "class:os.path.Oops", "topic:collections.namedtuple"]  # fmt: skip
    assert reference_pairs(tmp_path, ids) == [
        ("Returns a new deque object initialized left-to-right.", ["class:collections.deque"]),
        ("Add x to the right side of the deque.", ["method:collections.deque.append"]),
        ("Return the base name of pathname path, as split gives it.", ["function:os.path.basename"]),
        (dict(descriptions(REFERENCE))["os.path.Oops"], ["class:os.path.Oops"]),
    ]
    with pytest.raises(FileNotFoundError, match="no library reference"):
        reference_pairs(tmp_path / "elsewhere", ids)
