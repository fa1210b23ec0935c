"""The encoder contract every part of dualsearch relies on: :class:`Encoder`.

:class:`~dualsearch.towers.dual_encoder.DualEncoder` implements it over sentence-transformers towers; tests and
benchmarks implement it with :class:`~dualsearch.testing.FakeEncoder`. Indexing, re-indexing and
searching accept any object that has these members (a structural ``Protocol``: no base class needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from dualsearch.corpora.text import text_problem
from dualsearch.errors import InvalidInputError


@dataclass(frozen=True)
class TowerIdentity:
    """What an index records about the towers that built it, and checks on open."""

    model: str  # the path or hub id the towers were loaded from ("default" for the packaged ones)
    weights_sha256: str  # hash of every parameter, so retrained towers never pass for the old ones
    dimension: int
    routes: tuple[str, ...]  # ("document", "query") for separate towers, () for one shared model
    # each tower's own weights hash ("": the whole model's, as for one model serving both sides): a
    # query tower retrained alone keeps the document tower's hash, so the index's vectors stay valid
    query_weights_sha256: str = ""
    document_weights_sha256: str = ""
    # what runs each tower: "torch" (fp32), "onnx" (fp32 on ONNX Runtime) or "onnx-int8" (int8 weights);
    # vectors of one tower agree across backends within the bounds dualsearch.towers.backends documents
    query_backend: str = "torch"
    document_backend: str = "torch"
    # how the towers compare vectors ("cosine", "dot", "euclidean"; dualsearch.towers.similarity): the index's
    # metric and whether vectors are normalised follow it
    similarity: str = "cosine"

    def tower_sha256(self, side: str) -> str:
        """The weights hash of the ``"query"`` or ``"document"`` tower."""
        own = self.query_weights_sha256 if side == "query" else self.document_weights_sha256
        return own or self.weights_sha256

    def document_key(self) -> str:
        """What document vectors depend on: the document tower's weights, its backend unless PyTorch, and
        the similarity unless cosine (the key cosine PyTorch checkpoints have always had). Equal keys
        encode alike.

        Example:
            >>> TowerIdentity("m", "ab", 4, (), document_backend="onnx-int8").document_key()
            'ab-onnx-int8'
        """
        sha256 = self.tower_sha256("document")
        key = sha256 if self.document_backend == "torch" else f"{sha256}-{self.document_backend}"
        return key if self.similarity == "cosine" else f"{key}-{self.similarity}"  # unnormalised vectors


@dataclass(frozen=True)
class TokenVectors:
    """One text as a tower sees it: its tokens, their vectors, and how the tower pools them.

    An encoder may offer ``token_vectors(texts, side) -> list[TokenVectors]`` (``side``: ``"query"`` or
    ``"document"``) for explanations (:mod:`dualsearch.ranking.explain`); it is not required.
    """

    tokens: list[str]  # as the tokenizer names them, special tokens included ("[CLS]", "tea", "##s")
    spans: list[tuple[int, int] | None]  # character span of each token in the text; None for special tokens
    vectors: np.ndarray  # (tokens, d) float32, the tower's output before pooling
    mean_pooled: bool  # True when the tower's vector is the mean of these rows (then normalised or not)
    normalised: bool = True  # the tower's vector is scaled to unit length (cosine towers, or a Normalize module)


@runtime_checkable
class Encoder(Protocol):
    """A query tower and a document tower behind one contract.

    Both ``encode_*`` methods return L2-normalised float32 arrays of shape ``(n, dimension)`` and
    refuse empty texts with :class:`~dualsearch.errors.InvalidInputError` (see :func:`check_texts`).
    ``document_window`` and ``document_token_spans`` let the indexer cut long documents into passages
    that fit the document tower (:mod:`dualsearch.index.passages`).
    """

    batch_size: int

    @property
    def dimension(self) -> int: ...

    def identity(self) -> TowerIdentity: ...

    def encode_queries(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray: ...

    @property
    def document_window(self) -> int:
        """Tokens one input of the document tower holds, special tokens excluded (more are cut off)."""
        ...

    def document_token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Each text's tokens under the document tower's tokenizer, as (start, end) character offsets."""
        ...


def check_texts(texts: Sequence[str], what: str) -> list[str]:
    """The texts as a list, or :class:`InvalidInputError` for one string, or a text that is not a string,
    is blank (whitespace, NUL, zero-width characters) or holds a lone surrogate.

    Example:
        >>> check_texts(("a", "b"), "query")
        ['a', 'b']
        >>> check_texts(["a", " "], "query")
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: query 1 is empty or not a string: ' '
    """
    if isinstance(texts, str):
        raise InvalidInputError(f"encode_{what}s takes a list of strings, not one string")
    texts = list(texts)
    for position, text in enumerate(texts):
        if text_problem(text) is not None:  # not a string, blank, or a lone surrogate no tokenizer encodes
            raise InvalidInputError(f"{what} {position} is empty or not a string: {text!r}")
    return texts
