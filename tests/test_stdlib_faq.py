"""Pairs from the Python FAQ (dualsearch.corpora.stdlib_faq): questions, the roles their answers use."""

from __future__ import annotations

import pytest

from dualsearch.corpora.stdlib_faq import faq_pairs, question_sections, referenced_ids

FAQ = """\
Library and Extension FAQ
=========================

General Library Questions
=========================

How do I copy a file?
---------------------

The :mod:`shutil` module contains a :func:`~shutil.copyfile` function.  Note the
:meth:`reversed() <reversed>` of it, and :func:`thirdparty.copy`.

How do I read mail?
-------------------

Nothing in the standard library.

Why is join() a string method?
------------------------------

Because :meth:`str.join` takes any iterable.
"""
IDS = ["module:shutil", "function:shutil.copyfile", "class:reversed", "method:str.join", "topic:shutil"]


def test_only_titles_that_ask_are_questions_and_each_keeps_its_own_body():
    sections = question_sections(FAQ)
    assert [title for title, _ in sections] == [
        "How do I copy a file?",
        "How do I read mail?",
        "Why is join() a string method?",
    ]
    assert ":func:`~shutil.copyfile`" in sections[0][1] and "str.join" not in sections[0][1]


def test_roles_map_to_corpus_ids_whatever_kind_they_claim_and_unknown_targets_drop():
    body = question_sections(FAQ)[0][1]
    assert referenced_ids(body, IDS) == ["class:reversed", "function:shutil.copyfile", "module:shutil"]


def test_pairs_come_from_the_faq_folder_and_questions_without_documents_give_none(tmp_path):
    (tmp_path / "faq").mkdir()
    (tmp_path / "faq" / "library.rst.txt").write_text(FAQ, encoding="utf-8")
    (tmp_path / "faq" / "index.rst.txt").write_text("FAQ\n===\n\nWhat is here?\n-------------\n\n:mod:`shutil`\n")
    assert faq_pairs(tmp_path, IDS) == [
        ("How do I copy a file?", ["class:reversed", "function:shutil.copyfile", "module:shutil"]),
        ("Why is join() a string method?", ["method:str.join"]),
    ]
    with pytest.raises(FileNotFoundError, match="no FAQ sources"):
        faq_pairs(tmp_path / "elsewhere", IDS)
