"""Errors of fine-tuning, in the engine's hierarchy (:class:`search.errors.SearchError`)."""

from __future__ import annotations

from search.errors import CorpusError


class TrainingDataError(CorpusError):
    """Training pairs are unusable: a query without a positive, an unknown document id, empty text,
    or a source with no usable pairs. The message names the source (and the record when there is one)."""
