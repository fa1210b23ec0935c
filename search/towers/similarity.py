"""How the towers' vectors are compared: cosine (the default), dot product or Euclidean distance.

The similarity is the towers' own: they are trained with it (the contrastive loss scores pairs with
it), sentence-transformers saves it in the model directory (``similarity_fn_name`` in
``config_sentence_transformers.json``), and an index built with the towers follows it:

- ``cosine``: vectors are L2-normalised, the index ranks by inner product;
- ``dot``: vectors keep their length (a longer document vector can score higher), inner product;
- ``euclidean``: vectors keep their length, the index ranks by L2 distance.

Everywhere after the index a higher score is better, so a Euclidean score is the negated squared
distance (:func:`ranking_scores`): passages' MaxP, the fusion's min-max and the priors need no case
of their own.
"""

from __future__ import annotations

import numpy as np

from dualsearch.errors import InvalidInputError

SIMILARITIES = ("cosine", "dot", "euclidean")
DEFAULT_SIMILARITY = "cosine"
METRICS = {"cosine": "inner_product", "dot": "inner_product", "euclidean": "l2"}  # the manifest's names


def check_similarity(name: str) -> str:
    """``name`` if it is a similarity we serve, else :class:`InvalidInputError`.

    Example:
        >>> check_similarity("dot")
        'dot'
        >>> check_similarity("manhattan")
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: unknown similarity 'manhattan'; choose from cosine, dot, euclidean
    """
    if name not in SIMILARITIES:
        raise InvalidInputError(f"unknown similarity {name!r}; choose from {', '.join(SIMILARITIES)}")
    return name


def normalises(similarity: str) -> bool:
    """Whether the towers' vectors are L2-normalised (cosine only)."""
    return check_similarity(similarity) == "cosine"


def finish_vectors(vectors: np.ndarray, similarity: str) -> np.ndarray:
    """Pooled vectors as the index stores them: unit length for cosine, as they are otherwise.

    Example:
        >>> finish_vectors(np.array([[3.0, 4.0]], np.float32), "cosine").tolist()
        [[0.6000000238418579, 0.800000011920929]]
        >>> finish_vectors(np.array([[3.0, 4.0]], np.float32), "dot").tolist()
        [[3.0, 4.0]]
    """
    if not normalises(similarity):
        return vectors
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def faiss_metric(similarity: str) -> int:
    """The FAISS metric of an index over these towers' vectors."""
    import faiss

    return faiss.METRIC_L2 if check_similarity(similarity) == "euclidean" else faiss.METRIC_INNER_PRODUCT


def ranking_scores(raw: np.ndarray, similarity: str) -> np.ndarray:
    """FAISS's scores as scores where higher is better: L2 distances negated, inner products as they are.

    Example:
        >>> ranking_scores(np.array([0.5, 2.0]), "euclidean").tolist(), ranking_scores(np.array([0.5]), "dot").tolist()
        ([-0.5, -2.0], [0.5])
    """
    return -raw if check_similarity(similarity) == "euclidean" else raw


def exact_knn(queries: np.ndarray, vectors: np.ndarray, k: int, similarity: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of (m, d) ``queries`` over (n, d) ``vectors``: scores (higher is better) and
    row positions, (m, k) each, as an index over these towers' vectors ranks them.

    Example:
        >>> vectors = np.array([[1.0, 0.0], [3.0, 0.0]], np.float32)
        >>> [exact_knn(np.array([[1.0, 0.0]], np.float32), vectors, 1, name)[1].tolist() for name in SIMILARITIES]
        [[[1]], [[1]], [[0]]]
    """
    import faiss

    scores, positions = faiss.knn(
        np.ascontiguousarray(queries, dtype=np.float32),
        np.ascontiguousarray(vectors, dtype=np.float32),
        k,
        metric=faiss_metric(similarity),
    )
    return ranking_scores(scores, similarity), positions


def score_matrix(queries: np.ndarray, documents: np.ndarray, similarity: str) -> np.ndarray:
    """(m, n) scores of (m, d) ``queries`` against (n, d) ``documents``, higher is better, as the index ranks.

    Example:
        >>> score_matrix(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [3.0, 0.0]]), "euclidean").tolist()
        [[0.0, -4.0]]
    """
    products = queries @ documents.T
    if check_similarity(similarity) != "euclidean":
        return products
    return 2 * products - np.sum(queries**2, axis=1)[:, None] - np.sum(documents**2, axis=1)[None, :]


def pair_scores(query: np.ndarray, vectors: np.ndarray, similarity: str) -> np.ndarray:
    """Scores of one query vector (d,) against (m, d) vectors, higher is better, as the index ranks.

    Example:
        >>> query, vectors = np.array([1.0, 0.0]), np.array([[1.0, 0.0], [3.0, 0.0]])
        >>> pair_scores(query, vectors, "dot").tolist(), pair_scores(query, vectors, "euclidean").tolist()
        ([1.0, 3.0], [0.0, -4.0])
    """
    return score_matrix(query[None, :], vectors, similarity)[0]
