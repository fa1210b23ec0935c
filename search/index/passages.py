"""Cut documents longer than the document tower's window into overlapping passages.

A tower reads at most ``document_window`` tokens (254 for all-MiniLM-L6-v2) and silently drops the
rest, so a long document would be indexed by its opening only. Instead each document becomes one
or more passages: windows of ``window`` tokens of its text, starting every ``stride`` tokens, the
last one ending at the last token. Each passage is encoded as ``title + " " + passage`` (the title
takes part of the window) and scored on its own; a document scores as its best passage (MaxP).
A document that fits is one passage, encoded exactly as before: ``title + " " + text``.

With ``lead=True`` a document whose text goes on past its first paragraph also gets that paragraph
alone (with the title) as a passage of its own, first. A summary that opens a longer text (a
docstring's first line, PEP 257; an article's lead) is what a short query names, and mean pooling
over the whole window dilutes it with everything after; on the built-in corpus's dev queries the
extra passage raised MRR@10 at the same ranking settings (``python -m bench stdlib_dev`` before and
after, results/stdlib_dev.json; docs/stdlib.md).

Spans are character offsets into the document's text, so a search result can show what matched.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from dualsearch.corpora.document import Document
from dualsearch.defaults import PASSAGE_STRIDE_FRACTION
from dualsearch.errors import InvalidInputError
from dualsearch.towers.contract import Encoder

logger = logging.getLogger(__name__)
MIN_BODY_SHARE = 2  # a title may take at most 1/2 of the window; longer titles are cut by the tower
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class PassageConfig:
    """How documents are cut into passages.

    Attributes:
        window: Tokens of text per passage; None means the document tower's whole window.
        stride: Tokens from one passage's start to the next; None means ``PASSAGE_STRIDE_FRACTION``
            of the window (the whole window by default: chosen on dev data over overlapping halves).
        max_passages: At most this many passages a document (None: as many as it takes; 1 cuts
            every document at the window, which is what a tower alone does), the lead passage not
            counted.
        lead: Also encode each document's first paragraph alone, when more text follows it.
    """

    window: int | None = None
    stride: int | None = None
    max_passages: int | None = None
    lead: bool = False

    def __post_init__(self) -> None:
        if self.max_passages is not None and self.max_passages < 1:
            raise InvalidInputError(f"max_passages must be at least 1, got {self.max_passages}")
        if self.window is not None and self.window < 8:
            raise InvalidInputError(f"passage window must be at least 8 tokens, got {self.window}")
        if self.stride is not None and self.stride < 1:
            raise InvalidInputError(f"passage stride must be at least 1 token, got {self.stride}")
        if self.window is not None and self.stride is not None and self.stride > self.window:
            raise InvalidInputError(
                f"passage stride {self.stride} is longer than the window {self.window}: "
                "text between passages would be skipped"
            )

    def resolve(self, encoder: Encoder) -> tuple[int, int]:
        """(window, stride) in tokens for ``encoder``'s document tower."""
        window = min(self.window or encoder.document_window, encoder.document_window)
        stride = min(self.stride or max(1, round(window * PASSAGE_STRIDE_FRACTION)), window)
        return window, stride

    def record(self, encoder: Encoder) -> dict:
        """The settings as an index's manifest records them (``passages``), resolved for ``encoder``:
        two versions whose records are equal cut every document alike.

        Example:
            >>> from dualsearch.testing import FakeEncoder
            >>> PassageConfig(max_passages=1).record(FakeEncoder(window=16))
            {'window': 16, 'stride': 16, 'max_passages': 1}
        """
        window, stride = self.resolve(encoder)
        record = {"window": window, "stride": stride, "max_passages": self.max_passages}
        if self.lead:  # only when on: the manifests of indexes without it stay as they were
            record["lead"] = True
        return record

    @classmethod
    def from_record(cls, record: dict) -> PassageConfig:
        """The settings a manifest recorded (:meth:`record`), to cut new documents the same way.

        Example:
            >>> PassageConfig.from_record({"window": 16, "stride": 8, "max_passages": None})
            PassageConfig(window=16, stride=8, max_passages=None, lead=False)
        """
        return cls(record.get("window"), record.get("stride"), record.get("max_passages"), bool(record.get("lead")))


def window_spans(token_spans: list[tuple[int, int]], window: int, stride: int) -> list[tuple[int, int]]:
    """Character spans of the passages over a text's tokens: starts at 0, stride, 2·stride, ... and
    stops at the first window that reaches the last token. No tokens give one empty span.

    Example:
        >>> tokens = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]  # "a b c d e"
        >>> window_spans(tokens, window=5, stride=3), window_spans(tokens, window=3, stride=2)
        ([(0, 9)], [(0, 5), (4, 9)])
    """
    if not token_spans:
        return [(0, 0)]
    spans = []
    for start in range(0, len(token_spans), stride):
        end = min(start + window, len(token_spans))
        spans.append((token_spans[start][0], token_spans[end - 1][1]))
        if end == len(token_spans):
            break
    return spans


def lead_paragraph_end(text: str) -> int | None:
    """Where the text's first paragraph ends (its last non-blank character + 1), or None when nothing
    but blank space follows it: paragraphs are separated by a blank line.

    Example:
        >>> text = "Return the sum.\\n\\nMore details here."
        >>> text[: lead_paragraph_end(text)], lead_paragraph_end("One paragraph,\\non two lines.")
        ('Return the sum.', None)
    """
    opening = len(text) - len(text.lstrip())
    blank = _BLANK_LINE.search(text, opening)
    if blank is None or not text[blank.end() :].strip():
        return None
    return len(text[: blank.start()].rstrip())


@dataclass
class PassagePlan:
    """Passages of a chunk of documents: spans per document, and the texts to encode in order."""

    spans: list[list[tuple[int, int]]]
    texts: list[str]
    long_titles: int = 0  # documents whose title alone takes more than half the window
    cut_short: int = 0  # documents whose text goes on past their last passage (``max_passages``)


def plan_passages(
    documents: list[Document],
    encoder: Encoder,
    window: int,
    stride: int,
    max_passages: int | None = None,
    lead: bool = False,
) -> PassagePlan:
    """Cut each document into passages that fit the document tower with its title in front; with
    ``lead``, a document's first paragraph is a passage too, first, when it is shorter than the first
    window and text follows it.

    Example:
        >>> from dualsearch.testing import FakeEncoder
        >>> doc = Document("d", "Tea", "one two three four five six seven")
        >>> plan = plan_passages([doc], FakeEncoder(window=4), window=4, stride=2)
        >>> plan.texts  # the title takes 1 of the 4 tokens; windows of 3 start every 2 (4 * 2/4 scaled)
        ['Tea one two three', 'Tea three four five', 'Tea five six seven']
        >>> doc = Document("d", "Tea", "Green tea.\\n\\nSteep two minutes.")
        >>> plan_passages([doc], FakeEncoder(window=8), window=8, stride=8, lead=True).texts
        ['Tea Green tea.', 'Tea Green tea.\\n\\nSteep two minutes.']
    """
    title_lengths = iter(len(spans) for spans in encoder.document_token_spans([d.title for d in documents if d.title]))
    text_tokens = encoder.document_token_spans([d.text for d in documents])
    plan = PassagePlan([], [])
    for document, tokens in zip(documents, text_tokens, strict=True):
        title_length = next(title_lengths) if document.title else 0
        plan.long_titles += title_length > window // MIN_BODY_SHARE
        body = max(window - title_length, window // MIN_BODY_SHARE, 1)
        spans = window_spans(tokens, body, max(1, round(body * stride / window)))
        if max_passages is not None and len(spans) > max_passages:
            spans = spans[:max_passages]
            plan.cut_short += 1
        if len(spans) == 1 and (not tokens or spans[0][1] == tokens[-1][1]):
            spans = [(0, len(document.text))]  # it fits: encoded as always, title + " " + text
        lead_end = lead_paragraph_end(document.text) if lead else None
        if lead_end is not None and lead_end < spans[0][1]:  # a longer lead is what the first window holds
            spans = [(0, lead_end), *spans]
        plan.spans.append(spans)
        prefix = f"{document.title} " if document.title else ""
        plan.texts += [prefix + document.text[start:end] for start, end in spans]
    return plan
