"""The keyword side of the engine: a BM25 index over whole documents (bm25s), one per index version.

Documents are tokenised by bm25s's word pattern (Unicode letters and digits, so any language
tokenises; languages without spaces tokenise coarsely), lower-cased, English stop words removed
and words stemmed with the Snowball English stemmer (PyStemmer). BM25 reads whole documents, so
the tower's window does not limit it. Scores are per document row, aligned with the store.

Building holds the token ids of the corpus in memory (a few bytes per token), the one part of
indexing that is not bounded by a chunk; the inverted index itself is a sparse matrix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
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


class LexicalIndex:
    """BM25 scores of every document for a query.

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

        stemmer, vocabulary, ids = make_stemmer(), {}, []
        batch: list[str] = []
        for text in texts:
            batch.append(text)
            if len(batch) == _TOKENIZE_CHUNK:
                ids += _token_ids(tokenize(batch, stemmer), vocabulary)
                batch = []
        ids += _token_ids(tokenize(batch, stemmer), vocabulary) if batch else []
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

    def term_scores(self, query: str, doc_rows: list[int]) -> list[tuple[str, np.ndarray]]:
        """Each distinct query term the index knows, with its share of the BM25 score of each of
        ``doc_rows``: (term, (len(doc_rows),) float32). BM25 sums over the query's terms (a repeated
        term counts each time), so the shares add up to :meth:`scores`."""
        tokens = tokenize([query], self._stemmer)[0]
        shares = []
        for term in dict.fromkeys(token for token in tokens if token in self._retriever.vocab_dict):
            per_document = np.asarray(self._retriever.get_scores([term]), dtype=np.float32)[doc_rows]
            shares.append((term, per_document * tokens.count(term)))
        return shares

    def save(self, directory: Path) -> list[str]:
        """Write the index into ``directory/lexical``; returns the written files, relative to ``directory``."""
        target = Path(directory) / LEXICAL_DIR
        self._retriever.save(str(target), show_progress=False)
        (target / "settings.json").write_text(json.dumps(SETTINGS, sort_keys=True) + "\n", encoding="utf-8")
        return sorted(str(path.relative_to(directory)) for path in target.iterdir() if path.is_file())

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        bm25s = import_bm25s()

        target = Path(directory) / LEXICAL_DIR
        try:
            retriever = bm25s.BM25.load(str(target), mmap=True, show_progress=False, verbosity=0)
        except (OSError, ValueError, KeyError) as error:
            raise IndexCorruptError(f"{target}: the BM25 index cannot be read ({error})") from None
        return cls(retriever, make_stemmer())


def _token_ids(token_lists: list[list[str]], vocabulary: dict[str, int]) -> list[list[int]]:
    return [[vocabulary.setdefault(token, len(vocabulary)) for token in tokens] for tokens in token_lists]
