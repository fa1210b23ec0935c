"""Checks on queries and document ids handed to the engine."""

from __future__ import annotations

import pytest

from dualsearch.corpora.text_checks import check_doc_ids, check_query
from dualsearch.errors import InvalidInputError


def test_a_usable_query_is_returned_as_is():
    assert check_query("  green tea ") == "  green tea "


@pytest.mark.parametrize("query", ["", "\x00", "\u200b", " \n"])
def test_blank_queries_are_empty(query):
    with pytest.raises(InvalidInputError, match="empty query"):
        check_query(query)


def test_a_non_string_query_is_named_by_its_type_not_called_empty():
    with pytest.raises(InvalidInputError, match="^the query must be a string, got bytes$"):
        check_query(b"vitamin")


@pytest.mark.parametrize(("doc_id", "problem"), [("bad\udcffid", "not valid Unicode"), (7, "must be a string")])
def test_document_ids_no_store_can_hold_are_refused(doc_id, problem):
    with pytest.raises(InvalidInputError, match=problem):
        check_doc_ids(["fine", doc_id])
