"""The dual encoder: a query tower and a document tower behind one ``encode`` contract."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence

import numpy as np

from dualsearch.defaults import BATCH_SIZE, DEFAULT_MODEL
from dualsearch.errors import InvalidInputError
from dualsearch.towers.contract import TokenVectors, TowerIdentity, check_texts
from dualsearch.towers.similarity import DEFAULT_SIMILARITY, check_similarity, finish_vectors, normalises
from dualsearch.towers.weights import DOCUMENT_ROUTE, QUERY_ROUTE, load_towers, model_reference, router_routes

logger = logging.getLogger(__name__)


def state_dict_sha256(model) -> str:
    """sha256 over parameter names, dtypes, shapes and bytes, in name order (any torch module)."""
    return state_dict_sha256s(model)[""]


def state_dict_sha256s(model, parts: dict[str, object] | None = None) -> dict[str, str]:
    """:func:`state_dict_sha256` of ``model`` (key ``""``) and of each submodule in ``parts`` (name ->
    module), in one pass over the weights: each part's digest is the one its own state dict gives."""
    part_of = {id(module): part for part, module in (parts or {}).items()}
    prefixes = {part_of[id(module)]: name + "." for name, module in model.named_modules() if id(module) in part_of}
    digests = {part: hashlib.sha256() for part in ["", *prefixes]}
    for name, tensor in sorted(model.state_dict().items()):
        array = tensor.detach().cpu().contiguous()
        data = array.view(-1).view(_byte_dtype()).numpy().tobytes() if array.numel() else b""
        for part, prefix in [("", ""), *prefixes.items()]:
            if name.startswith(prefix):
                digests[part].update(f"{name[len(prefix) :]}|{array.dtype}|{tuple(array.shape)}|".encode())
                digests[part].update(data)
    return {part: digest.hexdigest() for part, digest in digests.items()}


def _byte_dtype():
    import torch

    return torch.uint8


class DualEncoder:
    """Query and document towers over a sentence-transformers model.

    A model whose ``Router`` has ``query`` and ``document`` routes encodes each side with its own
    weights; a model without routes serves as both towers.

    Example:
        >>> encoder = DualEncoder.load()  # doctest: +SKIP
        >>> encoder.encode_queries(["what is tea"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, model, model_name: str, batch_size: int = BATCH_SIZE) -> None:
        routes = tuple(router_routes(model))
        if routes and not {QUERY_ROUTE, DOCUMENT_ROUTE} <= set(routes):
            raise InvalidInputError(f"the model's Router has routes {list(routes)}; expected 'query' and 'document'")
        if batch_size < 1:
            raise InvalidInputError(f"batch size must be at least 1, got {batch_size}")
        self.model = model
        self.model_name = model_name
        self.batch_size = batch_size
        self.similarity = check_similarity(model.similarity_fn_name or DEFAULT_SIMILARITY)
        self._routes = routes
        self._identity: TowerIdentity | None = None

    @classmethod
    def load(cls, model: str = DEFAULT_MODEL, batch_size: int = BATCH_SIZE, device: str = "cpu") -> DualEncoder:
        """Load towers from ``default``, a local sentence-transformers directory, or a hub id."""
        _quiet_weight_loading()
        started = time.perf_counter()
        encoder = cls(load_towers(model, device), model_name=model_reference(model), batch_size=batch_size)
        logger.info("loaded towers %s in %.1fs", model, time.perf_counter() - started)
        return encoder

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def identity(self) -> TowerIdentity:
        if self._identity is None:  # hashing ~90 MB of weights costs a few hundred ms: do it once
            routes = (QUERY_ROUTE, DOCUMENT_ROUTE) if self._routes else ()
            hashes = state_dict_sha256s(self.model, {route: self.model[0].sub_modules[route] for route in routes})
            self._identity = TowerIdentity(
                self.model_name,
                hashes[""],
                self.dimension,
                self._routes,
                query_weights_sha256=hashes.get(QUERY_ROUTE, hashes[""]),  # one model: both sides are the whole
                document_weights_sha256=hashes.get(DOCUMENT_ROUTE, hashes[""]),
                similarity=self.similarity,
            )
        return self._identity

    def encode_queries(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Encode queries with the query tower: (n, d) float32, of unit length for cosine towers."""
        texts = check_texts(texts, "query")
        return self._encode(self.model.encode_query, texts, show_progress)

    def encode_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Encode documents with the document tower: (n, d) float32, of unit length for cosine towers."""
        texts = check_texts(texts, "document")
        return self._encode(self.model.encode_document, texts, show_progress)

    @property
    def document_window(self) -> int:
        transformer = self._document_transformer()
        return int(transformer.max_seq_length) - transformer.tokenizer.num_special_tokens_to_add(pair=False)

    def document_token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character offsets of each text's tokens under the document tower's (fast) tokenizer."""
        if not texts:
            return []  # the tokenizer fails on an empty batch
        tokenizer = self._document_transformer().tokenizer
        encoded = tokenizer(
            list(texts), add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
        )
        return [[(int(start), int(end)) for start, end in spans] for spans in encoded["offset_mapping"]]

    def _document_transformer(self):
        """The first module of the document tower (a sentence-transformers ``Transformer``)."""
        return self.tower_modules(DOCUMENT_ROUTE)[0]

    def tower_modules(self, side: str):
        """The modules of one side: the Router's route, or the whole model when it has no routes."""
        return self.model[0].sub_modules[side] if self._routes else self.model

    def token_vectors(self, texts: Sequence[str], side: str) -> list[TokenVectors]:
        """Each text's tokens and their vectors under the ``"query"`` or ``"document"`` tower, as the
        tower computes them before pooling (same tokenizer, same truncation)."""
        texts = check_texts(texts, side)
        if not texts:
            return []
        encode = self.model.encode_query if side == QUERY_ROUTE else self.model.encode_document
        features = encode(texts, batch_size=self.batch_size, output_value=None, convert_to_numpy=False)
        transformer = self.tower_modules(side)[0]
        mean_pooled = any(
            type(module).__name__ == "Pooling" and getattr(module, "pooling_mode", "") == "mean"
            for module in self.tower_modules(side)
        )
        normalised = self.normalises(side)
        tokenizer = transformer.tokenizer
        spans = tokenizer(
            texts, truncation=True, max_length=transformer.max_seq_length, return_offsets_mapping=True, verbose=False
        )
        answers = []
        for number, output in enumerate(features):
            ids = output["input_ids"][output["attention_mask"].bool()].tolist()
            if ids != spans["input_ids"][number]:  # the tower tokenised differently (a prompt?): no spans
                offsets = [None] * len(ids)
            else:
                special = set(tokenizer.all_special_ids)
                offsets = [
                    None if token in special else (int(start), int(end))
                    for token, (start, end) in zip(ids, spans["offset_mapping"][number])
                ]
            vectors = output["token_embeddings"][: len(ids)].float().numpy()  # (t, d)
            answers.append(
                TokenVectors(tokenizer.convert_ids_to_tokens(ids), offsets, vectors, mean_pooled, normalised)
            )
        return answers

    def normalises(self, side: str) -> bool:
        """Whether the ``side`` tower's vectors are of unit length: cosine towers always are, others when
        the tower ends in a ``Normalize`` module."""
        modules = list(self.tower_modules(side))
        return normalises(self.similarity) or bool(modules) and type(modules[-1]).__name__ == "Normalize"

    def export_query_tower(self, out_dir) -> None:
        """Save the query tower as an fp32 ONNX tower directory (:mod:`dualsearch.towers.export`)."""
        from dualsearch.towers.export import export_tower

        export_tower(self, QUERY_ROUTE, out_dir, "onnx")

    def _encode(self, encode, texts: list[str], show_progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = encode(
            texts, batch_size=self.batch_size, show_progress_bar=show_progress, convert_to_numpy=True
        ).astype(np.float32, copy=False)  # (n, d)
        return finish_vectors(vectors, self.similarity)  # cosine: unit length, inner product == cosine


def _quiet_weight_loading() -> None:
    """transformers draws a progress bar per checkpoint load; ours are the only bars users should see."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
