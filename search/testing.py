"""Test doubles for the towers: a tiny random two-tower model and a deterministic fake encoder."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
from pathlib import Path

import numpy as np

from dualsearch.towers.contract import TokenVectors, TowerIdentity, check_texts

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _tiny_tower(directory: Path, seed: int, normalize: bool = True):
    """A 2-layer, 32-wide random BERT with all-MiniLM-L6-v2's tokenizer, as sentence-transformers modules
    (ending in ``Normalize`` unless ``normalize`` is False)."""
    import torch
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    from dualsearch.towers.weights import default_base_path

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(directory)
    for name in TOKENIZER_FILES:
        shutil.copy(Path(default_base_path()) / name, directory / name)
    modules = [Transformer(str(directory), max_seq_length=64), Pooling(32, "mean")]
    return [*modules, Normalize()] if normalize else modules


def save_tiny_router_model(directory: Path, similarity: str = "cosine") -> Path:
    """Save a sentence-transformers model whose Router has separately weighted query/document towers,
    comparing vectors by ``similarity`` (towers other than cosine keep their vectors' length)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Router

    scratch = directory.parent / f"{directory.name}-towers"
    normalize = similarity == "cosine"
    router = Router.for_query_document(
        query_modules=_tiny_tower(scratch / "query", seed=1, normalize=normalize),
        document_modules=_tiny_tower(scratch / "document", seed=2, normalize=normalize),
    )
    SentenceTransformer(modules=[router], device="cpu", similarity_fn_name=similarity).save(str(directory))
    return directory


def save_tiny_plain_model(directory: Path) -> Path:
    """A tiny model without routes (one tower serves both sides)."""
    from sentence_transformers import SentenceTransformer

    SentenceTransformer(modules=_tiny_tower(directory.parent / f"{directory.name}-tower", seed=3), device="cpu").save(
        str(directory)
    )
    return directory


class FakeEncoder:
    """Deterministic bag-of-words hashing encoder with the DualEncoder interface (no torch).

    Texts sharing words get similar vectors, so ranking behaves sensibly in tests. Its "tokenizer"
    splits words (``\\w+``), and its document window is ``window`` words, so tests can make
    multi-passage documents with a few dozen words.

    A ``query_variant`` stands for a query tower retrained alone: every query also gets that word, so
    its vectors (and its tower's hash) differ while the document tower stays the same.
    """

    def __init__(
        self,
        dimension: int = 256,
        salt: str = "",
        window: int = 512,
        query_variant: str = "",
        similarity: str = "cosine",
    ) -> None:
        self.dimension, self.salt, self.batch_size, self.model_name = dimension, salt, 32, f"fake{salt}"
        self.document_window, self.query_variant, self.similarity = window, query_variant, similarity

    def identity(self) -> TowerIdentity:
        def digest(text: str) -> str:
            return hashlib.sha256(text.encode()).hexdigest()

        document = digest(f"fake|{self.dimension}|{self.salt}")  # the similarity is not in the weights
        if not self.query_variant:  # one model serving both sides, as before there were tower hashes
            return TowerIdentity(self.model_name, document, self.dimension, (), similarity=self.similarity)
        query = digest(f"fake|{self.dimension}|{self.salt}|query {self.query_variant}")
        routes = ("document", "query")
        whole, similarity = digest(query + document), self.similarity
        return TowerIdentity(self.model_name, whole, self.dimension, routes, query, document, similarity=similarity)

    def _encode(self, texts) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                bucket = int.from_bytes(hashlib.md5((self.salt + word).encode()).digest()[:4], "little")
                vectors[row, bucket % self.dimension] += 1.0
            vectors[row, 0] += 1e-3  # no all-zero rows
        if self.similarity != "cosine":  # the mean of the token vectors (words and the bias), unnormalised
            return vectors / np.array([[len(re.findall(r"\w+", text)) + 1] for text in texts], np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def encode_queries(self, texts, show_progress: bool = False) -> np.ndarray:
        texts = check_texts(texts, "query")
        return self._encode([f"{text} {self.query_variant}" for text in texts] if self.query_variant else texts)

    def encode_documents(self, texts, show_progress: bool = False) -> np.ndarray:
        return self._encode(check_texts(texts, "document"))

    def token_vectors(self, texts, side: str) -> list[TokenVectors]:
        """Each word as its own one-hot vector, plus the small constant every vector carries as a
        ``[bias]`` token: their mean (normalised for cosine) is exactly what ``encode_*`` returns."""
        texts = check_texts(texts, side)
        answers = []
        for text in texts:
            matches = list(re.finditer(r"\w+", text.lower()))
            extra = self.query_variant.split() if side == "query" and self.query_variant else []
            words = [match.group() for match in matches] + extra
            vectors = np.zeros((len(words) + 1, self.dimension), np.float32)
            for row, word in enumerate(words):
                bucket = int.from_bytes(hashlib.md5((self.salt + word).encode()).digest()[:4], "little")
                vectors[row, bucket % self.dimension] = 1.0
            vectors[-1, 0] = 1e-3
            spans = [match.span() for match in matches] + [None] * (len(extra) + 1)
            normalised = self.similarity == "cosine"
            answers.append(TokenVectors([*words, "[bias]"], spans, vectors, mean_pooled=True, normalised=normalised))
        return answers

    def document_token_spans(self, texts) -> list[list[tuple[int, int]]]:
        return [[match.span() for match in re.finditer(r"\w+", text)] for text in texts]


class CrashingOnceEncoder(FakeEncoder):
    """A :class:`FakeEncoder` whose process dies (SIGKILL) the first time it encodes documents while
    ``marker`` exists; the marker is removed first, so the run that retries succeeds. It stands for a
    Ray worker lost mid-chunk (an out-of-memory kill, a pre-empted node)."""

    def __init__(self, marker: str, **options) -> None:
        super().__init__(**options)
        self.marker = marker

    def encode_documents(self, texts, show_progress: bool = False) -> np.ndarray:
        try:
            os.remove(self.marker)
        except FileNotFoundError:
            return super().encode_documents(texts, show_progress)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")
