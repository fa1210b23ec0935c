"""BM25's tokenising, shared by every lexical index, and :class:`LexicalIndex`, the bm25s index of
format 2 kept as the reference the segmented postings are measured against
(:mod:`dualsearch.index.lexical_segments` is the engine's; ``python -m bench lexical_segments``).

Documents are tokenised by bm25s's word pattern (Unicode letters and digits, so any language
tokenises; languages without spaces tokenise coarsely), lower-cased, English stop words removed
and words stemmed with the Snowball English stemmer (PyStemmer). BM25 reads whole documents, so
the tower's window does not limit it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np

from dualsearch.errors import IndexCorruptError

logger = logging.getLogger(__name__)


def import_bm25s():
    """bm25s, with its logger handed back to the application: bm25s sets it to DEBUG when imported,
    which prints a line on every index build whatever level the application chose."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.NOTSET)
    return bm25s


LEXICAL_DIR = "lexical"
SETTINGS = {"library": "bm25s", "method": "lucene", "k1": 1.2, "b": 0.75, "stopwords": "en", "stemmer": "english"}
_TOKENIZE_CHUNK = 4096


def make_stemmer():
    import Stemmer

    return Stemmer.Stemmer(SETTINGS["stemmer"]).stemWords


def tokenize(texts: list[str], stemmer=None) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed word tokens of each text.

    Example:
        >>> tokenize(["The cats are running", "café 東京"])
        [['cat', 'run'], ['café', '東京']]
    """
    bm25s = import_bm25s()

    return bm25s.tokenize(
        texts, stopwords=SETTINGS["stopwords"], stemmer=stemmer or make_stemmer(), return_ids=False, show_progress=False
    )


def tokenize_all(texts: Iterable[str], stemmer=None) -> Iterator[list[str]]:
    """The tokens of each of ``texts`` (:func:`tokenize`), a chunk of texts at a time, so a corpus is
    never held whole.

    Example:
        >>> list(tokenize_all(iter(["The cats", "are running"])))
        [['cat'], ['run']]
    """
    stemmer = stemmer or make_stemmer()
    iterator = iter(texts)
    while batch := list(islice(iterator, _TOKENIZE_CHUNK)):
        yield from tokenize(batch, stemmer)


class LexicalIndex:
    """BM25 scores of every document for a query, by bm25s (statistics baked in when built).

    Example:
        >>> index = LexicalIndex.build(["green tea leaves", "espresso coffee", "black tea"])
        >>> [round(float(score), 2) for score in index.scores("tea")]  # the shorter document ranks first
        [0.19, 0.0, 0.23]
    """

    def __init__(self, retriever, stemmer) -> None:
        self._retriever, self._stemmer = retriever, stemmer

    @classmethod
    def build(cls, texts: Iterable[str]) -> LexicalIndex:
        """Index ``texts`` (row i = document row i), tokenised a chunk at a time."""
        bm25s = import_bm25s()

        stemmer, vocabulary = make_stemmer(), {}
        ids = [
            [vocabulary.setdefault(token, len(vocabulary)) for token in tokens]
            for tokens in tokenize_all(texts, stemmer)
        ]
        retriever = bm25s.BM25(method=SETTINGS["method"], k1=SETTINGS["k1"], b=SETTINGS["b"])
        retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocabulary), show_progress=False)
        return cls(retriever, stemmer)

    @property
    def document_count(self) -> int:
        return int(self._retriever.scores["num_docs"])

    def scores(self, query: str, mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every document, (n,) float32; ``mask`` (n,) zeroes the documents left out."""
        tokens = tokenize([query], self._stemmer)[0]
        known = [token for token in tokens if token in self._retriever.vocab_dict]
        if not known:
            scores = np.zeros(self.document_count, np.float32)
        else:
            scores = np.asarray(self._retriever.get_scores(known), dtype=np.float32)
        return scores if mask is None else scores * mask

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        bm25s = import_bm25s()

        target = Path(directory) / LEXICAL_DIR
        try:
            retriever = bm25s.BM25.load(str(target), mmap=True, show_progress=False, verbosity=0)
        except (OSError, ValueError, KeyError) as error:
            raise IndexCorruptError(f"{target}: the BM25 index cannot be read ({error})") from None
        return cls(retriever, make_stemmer())
