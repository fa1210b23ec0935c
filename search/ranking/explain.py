"""Why a document matched: each token's share of the score, exact where the towers allow it.

**The towers' score.** A mean-pooled tower's vector is the normalised mean of its token vectors:
``d = mean(h) / |mean(h)|``. The cosine with a query vector ``q`` is then a sum over the document's
tokens, ``q·d = Σ_i q·h_i / (n·|mean(h)|)``, so token ``i``'s share ``q·h_i / (n·|mean(h)|)`` is exact
and the shares add up to the score; the same holds for the query's tokens against the document's
vector. Special tokens ([CLS], [SEP]) are part of the mean and get their share too. For other pooling
(CLS, max) no such sum exists: each token's cosine with the other side, rescaled to add up to the
score, is given instead and the explanation says ``"exact": false``.

**Other similarities** (:mod:`dualsearch.towers.similarity`). A dot-product tower's vector is the mean itself
unless the tower ends in ``Normalize``: the shares are ``q·h_i / n``, exact as well. The Euclidean
score, the negated squared distance, is not a sum over tokens: its shares are the rescaled
approximation above, marked ``"exact": false``.

**BM25.** A BM25 score is a sum over the query's terms, so each term's share is exact too.

**Hybrid.** The fused score combines the two after normalising each over the query's candidates
(:mod:`dualsearch.ranking.fusion`); the explanation gives both sides' scores and their shares, not a split of
the fused number.

The document side is computed on the passage that matched (title + passage, as it was encoded), so
the shares add up to ``dense_score`` as stored in the index, within float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dualsearch.towers.contract import TokenVectors
from dualsearch.towers.similarity import pair_scores

TOP_TOKENS = 10  # tokens listed per side: the largest shares
# Words a reader never needs marked, even when the towers give them a share.
HIGHLIGHT_STOPWORDS = frozenset("a an and are as at be by for from in is it of on or that the this to with".split())


def token_shares(tokens: TokenVectors, other: np.ndarray, similarity: str = "cosine") -> tuple[np.ndarray, bool]:
    """Each token's share of the score between the tower's vector of ``tokens`` and the other side's
    vector ``other``, and whether the shares are exact (they add up to the score either way).

    Cosine and dot product are linear in a mean-pooled tower's vector, so the shares are exact; the
    Euclidean score (the negated squared distance) is not, and its shares are an approximation.

    Example:
        >>> rows = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
        >>> shares, exact = token_shares(TokenVectors(["a", "b"], [None, None], rows, True), np.array([1.0, 0.0]))
        >>> [round(float(share), 4) for share in shares], exact
        ([0.7071, 0.0], True)
    """
    vectors = tokens.vectors.astype(np.float64)  # (t, d)
    mean = vectors.mean(axis=0)
    scale = max(np.linalg.norm(mean), 1e-12) if tokens.normalised else 1.0  # the pooled vector is mean / scale
    linear = similarity in ("cosine", "dot")
    if tokens.mean_pooled and linear:
        return vectors @ other / (len(vectors) * scale), True
    score = float(pair_scores(other, (mean / scale)[None, :], similarity)[0])
    cosines = vectors @ other / np.maximum(np.linalg.norm(vectors, axis=1) * max(np.linalg.norm(other), 1e-12), 1e-12)
    total = cosines.sum()
    return (cosines * score / total if abs(total) > 1e-12 else np.zeros_like(cosines)), False


def top_tokens(tokens: TokenVectors, shares: np.ndarray, place, top: int = TOP_TOKENS) -> list[dict]:
    """The ``top`` tokens with the largest shares, each as ``{"token", "share", ...place(span)}``."""
    order = np.argsort(-shares, kind="stable")[:top]
    return [{"token": tokens.tokens[i], "share": round(float(shares[i]), 6), **place(tokens.spans[i])} for i in order]


def encoded_passage(title: str, text: str, passage: tuple[int, int] | None) -> tuple[str, int, int]:
    """The text the document tower encoded for a result's passage, where the body starts in it, and
    where the passage starts in the document's text (see :mod:`dualsearch.index.passages`)."""
    start, end = passage if passage is not None else (0, len(text))
    prefix = f"{title} " if title else ""
    return prefix + text[start:end], len(prefix), start


def document_place(title: str, body_offset: int, passage_start: int):
    """Map a span in the encoded passage to ``{"field": "title"|"text", "start", "end"}`` in the
    document (None: a special token, ``{"field": None}``)."""

    def place(span: tuple[int, int] | None) -> dict:
        if span is None:
            return {"field": None}
        start, end = span
        if title and start < len(title):
            return {"field": "title", "start": start, "end": min(end, len(title))}
        return {"field": "text", "start": start - body_offset + passage_start, "end": end - body_offset + passage_start}

    return place


def query_place(span: tuple[int, int] | None) -> dict:
    return {"start": span[0], "end": span[1]} if span is not None else {}


def explain_dense(encoder, query: str, query_vector: np.ndarray, documents: Sequence[tuple[str, str, tuple | None]]):
    """For each (title, text, passage) matched by ``query``: the document's and the query's tokens with
    the largest shares of the towers' score (cosine, dot product or negated squared distance), the
    score, and whether the shares are exact. The encoder must offer ``token_vectors``
    (:class:`~dualsearch.towers.contract.TokenVectors`).
    """
    similarity = encoder.identity().similarity
    encoded = [encoded_passage(*document) for document in documents]
    passage_tokens = encoder.token_vectors([text for text, _, _ in encoded], "document")
    [query_tokens] = encoder.token_vectors([query], "query")
    explanations = []
    for (title, _, _), (_, body_offset, passage_start), tokens in zip(documents, encoded, passage_tokens):
        mean = tokens.vectors.astype(np.float64).mean(axis=0)
        passage_vector = mean / max(np.linalg.norm(mean), 1e-12) if tokens.normalised else mean
        document_shares, exact_document = token_shares(tokens, query_vector.astype(np.float64), similarity)
        query_shares, exact_query = token_shares(query_tokens, passage_vector, similarity)
        explanations.append(
            {
                "exact": exact_document and exact_query,
                "dense_score": round(float(document_shares.sum()), 6),
                "document_tokens": top_tokens(
                    tokens, document_shares, document_place(title, body_offset, passage_start)
                ),
                "query_tokens": top_tokens(query_tokens, query_shares, query_place),
            }
        )
    return explanations


def explain_lexical(term_scores: list[tuple[str, np.ndarray]], count: int) -> list[list[dict]]:
    """Per result: each query term's share of its BM25 score, largest first (terms with no share left out)."""
    answers = []
    for position in range(count):
        terms = [(term, float(scores[position])) for term, scores in term_scores if scores[position] > 0]
        terms.sort(key=lambda pair: -pair[1])
        answers.append([{"term": term, "share": round(share, 6)} for term, share in terms])
    return answers


def highlight_words(text: str, document_tokens: list[dict], field: str = "text", count: int = 5) -> list[str]:
    """The words of ``text`` holding the ``count`` largest positive token shares (a word-piece counts
    for its whole word), lower-cased: what the demo marks in a result's snippet.

    Example:
        >>> tea = {"token": "tea", "share": 0.2, "field": "text", "start": 6, "end": 9}
        >>> highlight_words("Green tea is good", [tea])
        ['tea']
    """
    words: dict[str, float] = {}
    for token in document_tokens:
        if token.get("field") != field or token["share"] <= 0:
            continue
        start, end = token["start"], token["end"]
        while start > 0 and text[start - 1].isalnum():
            start -= 1
        while end < len(text) and text[end].isalnum():
            end += 1
        word = text[start:end].lower()
        if any(character.isalnum() for character in word) and word not in HIGHLIGHT_STOPWORDS:
            words[word] = words.get(word, 0.0) + token["share"]
    return sorted(words, key=lambda word: -words[word])[:count]


def explain_results(encoder, query: str, results: Sequence, lexical_shares=None) -> list[dict]:
    """One explanation per result (what :meth:`dualsearch.read.searcher.Searcher.explain` returns).

    Args:
        encoder: The towers that built the index.
        query: The query as searched.
        results: :class:`~dualsearch.read.searcher.SearchResult` objects for ``query``.
        lexical_shares: ``query, doc ids -> [(term, shares per doc)]``, or None when BM25 was not used.
    """
    explanations: list[dict] = [{} for _ in results]
    dense = [number for number, result in enumerate(results) if result.dense_score is not None]
    if dense and not hasattr(encoder, "token_vectors"):
        for number in dense:
            explanations[number] |= {"exact": False, "note": "these towers give no token vectors: no token shares"}
    elif dense:
        query_vector = encoder.encode_queries([query])[0]
        documents = [(results[n].title, results[n].text, results[n].passage) for n in dense]
        for number, explanation in zip(dense, explain_dense(encoder, query, query_vector, documents)):
            explanations[number] |= explanation
    lexical = [number for number, result in enumerate(results) if result.lexical_score is not None]
    if lexical and lexical_shares is not None:
        shares = lexical_shares(query, [results[n].doc_id for n in lexical])
        for number, terms in zip(lexical, explain_lexical(shares, len(lexical))):
            explanations[number] |= {"lexical_score": results[number].lexical_score, "lexical_terms": terms}
    return explanations
