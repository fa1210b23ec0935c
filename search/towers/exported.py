"""Towers on ONNX Runtime or OpenVINO: tokenise, run the exported graph, pool and normalise, with no torch.

A tower directory (written by :mod:`dualsearch.towers.export`) holds the transformer's graph
(``model.onnx`` for ONNX Runtime, fp32 or dynamically quantised to int8; ``model.xml`` and
``model.bin`` for OpenVINO, fp32 or statically quantised to int8), ``tokenizer.json`` and
``tower.json``: what the graph leaves out (truncation length, pooling, prompt) and where it came from
(the sha256 of the PyTorch weights it was exported from, of the graph itself, and of any calibration
texts). Opening a tower checks the graph
against its recorded hash, so identity is verified without loading torch.

A towers directory (``dualsearch export``) holds one tower per side and ``dualsearch-towers.json``;
:class:`OnnxEncoder` serves it as an :class:`~dualsearch.towers.contract.Encoder`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dualsearch.atomic import staged_directory
from dualsearch.defaults import BATCH_SIZE
from dualsearch.errors import MissingDependencyError, ModelError
from dualsearch.records import read_json_record
from dualsearch.towers.contract import Encoder, TokenVectors, TowerIdentity, check_texts

logger = logging.getLogger(__name__)

GRAPH_FILE, TOKENIZER_FILE, TOWER_FILE = "model.onnx", "tokenizer.json", "tower.json"
TOWERS_FILE = "dualsearch-towers.json"
ONNX_BACKENDS = ("onnx", "onnx-int8")  # fp32 graph; weights quantised to int8 per channel
# fp32 weights; OpenVINO computes in bfloat16 on CPUs with native bf16 (AMX, AVX512-BF16), else fp32
OPENVINO_BACKEND = "openvino"
# int8 weights and activations (NNCF's post-training quantisation), calibrated on the user's own documents
OPENVINO_INT8_BACKEND = "openvino-int8"
OPENVINO_BACKENDS = (OPENVINO_BACKEND, OPENVINO_INT8_BACKEND)
CALIBRATED_BACKENDS = (OPENVINO_INT8_BACKEND,)  # their export needs texts to calibrate on
EXPORTED_BACKENDS = (*ONNX_BACKENDS, *OPENVINO_BACKENDS)
OPENVINO_GRAPH, OPENVINO_WEIGHTS = "model.xml", "model.bin"
TOWER_FORMAT = 1
# Threads of one forward pass; 0 lets ONNX Runtime use every physical core.
THREADS_VARIABLE = "DUALSEARCH_THREADS"
PADDING_SLACK = 1.1  # padded tokens per real token a forward-pass batch may reach


@dataclass(frozen=True)
class TowerConfig:
    """``tower.json``: what running the graph needs beside it, and where the graph came from."""

    backend: str  # one of EXPORTED_BACKENDS
    source_weights_sha256: str  # state_dict_sha256 of the PyTorch tower the graph was exported from
    graph_sha256: str  # sha256 of the graph's files (graph_sha256())
    dimension: int
    max_seq_length: int  # tokens per input, special tokens included (longer inputs are cut)
    pooling: str  # "mean", "cls" or "max"
    inputs: list[str]  # the graph's inputs, in the tokenizer's names
    pad_token_id: int
    prompt: str = ""  # prepended to every text, as sentence-transformers' prompts are
    checked_min_cosine: float = 1.0  # lowest cosine to the PyTorch tower on the export's check texts
    calibration_texts: int = 0  # texts the quantisation was calibrated on (calibrated backends)
    calibration_sha256: str = ""  # sha256 of those texts: two calibrations on other texts give other graphs
    format: int = TOWER_FORMAT
    similarity: str = "cosine"  # how the towers compare vectors (dualsearch.towers.similarity)
    normalised: bool = True  # vectors scaled to unit length after pooling (cosine, or a Normalize module)

    @classmethod
    def read(cls, directory: Path) -> TowerConfig:
        return read_record(cls, Path(directory) / TOWER_FILE, "an exported tower")

    def write(self, directory: Path) -> None:
        write_record(self, Path(directory) / TOWER_FILE)


# written by exports of earlier releases, now read another way: "normalize" became "normalised"
LEGACY_TOWER_FIELDS = ("normalize",)


def read_record(cls, path: Path, what: str):
    """A ``tower.json``-like file as dataclass ``cls`` (:func:`dualsearch.records.read_json_record`), or
    :class:`ModelError` saying what is wrong with it."""

    def check_format(data: dict) -> None:
        if isinstance(data.get("format"), int) and data["format"] > TOWER_FORMAT:
            raise ModelError(f"{path} has format {data['format']}; this dualsearch reads up to {TOWER_FORMAT}")

    missing = f"{path.parent} is not {what} (no {path.name})"
    return read_json_record(cls, path, ModelError, missing, LEGACY_TOWER_FIELDS, check_format)


def write_record(record, path: Path) -> None:
    path.write_text(json.dumps(dataclasses.asdict(record), indent=2) + "\n", encoding="utf-8")


def graph_files(backend: str) -> tuple[str, ...]:
    """The files of a tower's graph, in the order they are hashed."""
    return (OPENVINO_GRAPH, OPENVINO_WEIGHTS) if backend in OPENVINO_BACKENDS else (GRAPH_FILE,)


def graph_sha256(directory: Path, backend: str) -> str:
    """sha256 of the graph's files (of the one file itself for ONNX, as exports before OpenVINO recorded)."""
    from dualsearch.towers.weights import file_sha256

    files = [Path(directory) / name for name in graph_files(backend)]
    if len(files) == 1:
        return file_sha256(files[0])
    return hashlib.sha256("".join(file_sha256(path) for path in files).encode()).hexdigest()


def onnx_threads() -> int:
    """Intra-op threads per session: ``$DUALSEARCH_THREADS``, or 0 (ONNX Runtime's choice: the cores)."""
    text = os.environ.get(THREADS_VARIABLE, "").strip()
    return int(text) if text.isdigit() else 0


def runtime_modules():
    """onnxruntime and tokenizers, or :class:`MissingDependencyError` (both are dependencies of dualsearch;
    an install without them still searches, through PyTorch)."""
    try:
        import onnxruntime
        import tokenizers
    except ImportError as error:
        raise MissingDependencyError(f"the ONNX towers need {error.name}: pip install onnxruntime tokenizers") from None
    return onnxruntime, tokenizers


def openvino_module():
    """openvino, or :class:`MissingDependencyError` naming the extra that installs it."""
    try:
        import openvino
    except ImportError:
        raise MissingDependencyError(
            "the openvino backend needs OpenVINO: pip install 'dualsearch[openvino]'"
        ) from None
    return openvino


def padding_bounded_batches(lengths: Sequence[int], batch_size: int, slack: float = PADDING_SLACK) -> list[np.ndarray]:
    """Row numbers of inputs of ``lengths`` tokens in forward-pass batches: longest first, at most
    ``batch_size`` per batch, and a batch closes before padding to its longest input would make it
    more than ``slack`` times its real tokens.

    A forward pass costs about the same per token whether its inputs come one by one or together, so
    padding is the only thing a batch can waste: 16 queries of mixed length in one batch cost 1.5x
    what they cost one by one (SciFact queries, int8 MiniLM, one thread; with the batches split at
    10% padding, the same as one by one).

    Example:
        >>> [rows.tolist() for rows in padding_bounded_batches([3, 30, 29, 4, 28], batch_size=3)]
        [[1, 2, 4], [3], [0]]
        >>> [rows.tolist() for rows in padding_bounded_batches([0, 0, 5], batch_size=2, slack=float("inf"))]
        [[2, 0], [1]]
    """
    order = np.argsort([-length for length in lengths], kind="stable")
    batches, start = [], 0
    while start < len(order):
        longest, end, tokens = lengths[order[start]], start, 0
        while end < len(order) and (
            end == start  # a batch holds at least its longest input, whatever the lengths
            or (end - start < batch_size and longest * (end - start + 1) <= slack * (tokens + lengths[order[end]]))
        ):
            tokens += lengths[order[end]]
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


class _OnnxRuntimeGraph:
    """Runs a graph on ONNX Runtime's CPU provider (a session may be called from several threads)."""

    def __init__(self, graph: Path) -> None:
        onnxruntime, _ = runtime_modules()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = onnx_threads()
        options.inter_op_num_threads = 1
        # Idle intra-op threads would spin for a while after each run, taking the cores that a server's
        # other requests (HTTP, BM25, fusion) need between forward passes; bulk encoding loses nothing
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - ONNX Runtime's own exception types, not importable here
            raise ModelError(f"ONNX Runtime cannot load {graph} ({error})") from None

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        (hidden,) = self._session.run(None, feeds)
        return hidden


class _OpenVinoGraph:
    """Runs a graph on OpenVINO's CPU plugin, one infer request per calling thread (a request is not
    thread-safe)."""

    def __init__(self, graph: Path) -> None:
        openvino = openvino_module()
        core = openvino.Core()
        properties: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
        threads = onnx_threads()
        if threads:
            properties["INFERENCE_NUM_THREADS"] = threads
        self._compiled = core.compile_model(core.read_model(str(graph)), "CPU", properties)
        precision = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        logger.info("OpenVINO runs %s in %s", graph.parent.name, precision)
        self._requests = threading.local()

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self._compiled.create_infer_request()
        request.infer(feeds)
        return np.array(request.get_output_tensor(0).data, copy=True)  # the request reuses its buffer


class OnnxTower:
    """One exported tower: texts in, unit vectors out (the same contract as a sentence-transformers tower)."""

    def __init__(self, directory: Path) -> None:
        _, tokenizers = runtime_modules()
        self.directory = Path(directory)
        self.config = config = TowerConfig.read(self.directory)
        if graph_sha256(self.directory, config.backend) != config.graph_sha256:
            raise ModelError(
                f"the graph in {self.directory} does not match the sha256 recorded in {TOWER_FILE}: "
                "the export is damaged"
            )
        self._spans_tokenizer = _read_tokenizer(tokenizers, self.directory / TOKENIZER_FILE)
        self._spans_tokenizer.no_truncation()
        self._spans_tokenizer.no_padding()
        self._tokenizer = _read_tokenizer(tokenizers, self.directory / TOKENIZER_FILE)
        self._tokenizer.no_padding()  # padded per batch below, to the batch's longest input
        self._tokenizer.enable_truncation(max_length=config.max_seq_length)
        if config.backend in OPENVINO_BACKENDS:
            self._graph = _OpenVinoGraph(self.directory / OPENVINO_GRAPH)
        else:
            self._graph = _OnnxRuntimeGraph(self.directory / GRAPH_FILE)

    @property
    def window(self) -> int:
        """Tokens of text one input holds (special tokens excluded)."""
        return self.config.max_seq_length - self._tokenizer.num_special_tokens_to_add(False)

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character offsets of each text's tokens (no special tokens, no truncation)."""
        encodings = self._spans_tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [[(int(start), int(end)) for start, end in encoding.offsets] for encoding in encodings]

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE, bounded_padding: bool = False) -> np.ndarray:
        """(n, d) float32 vectors as :class:`~dualsearch.towers.dual_encoder.DualEncoder` returns them: of unit length
        for cosine towers (inner product is cosine) and towers ending in ``Normalize``.

        Inputs go longest first in batches of ``batch_size``; with ``bounded_padding`` (queries) a batch
        also closes at 10% padding (:func:`padding_bounded_batches`). Documents keep full batches: int8
        graphs quantise activations per batch, so other batches would give an index other vectors."""
        encodings = self._tokenize(texts)
        vectors = np.zeros((len(encodings), self.config.dimension), dtype=np.float32)
        lengths = [len(encoding.ids) for encoding in encodings]
        for rows in padding_bounded_batches(lengths, batch_size, PADDING_SLACK if bounded_padding else float("inf")):
            hidden, mask = self._run([encodings[row] for row in rows])
            vectors[rows] = self._pool(hidden, mask)
        if not self.config.normalised:
            return vectors
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def token_vectors(self, texts: Sequence[str]) -> list[TokenVectors]:
        """Each text's tokens and their vectors before pooling (see :class:`TokenVectors`)."""
        prompted = bool(self.config.prompt)  # offsets point into the prompted text: not the user's
        mean_pooled = self.config.pooling == "mean"
        answers = []
        for encoding in self._tokenize(texts):
            hidden, _ = self._run([encoding])
            spans = [
                None if special or prompted else (int(start), int(end))
                for (start, end), special in zip(encoding.offsets, encoding.special_tokens_mask)
            ]
            vectors = hidden[0].astype(np.float32)
            answers.append(TokenVectors(list(encoding.tokens), spans, vectors, mean_pooled, self.config.normalised))
        return answers

    def _tokenize(self, texts: Sequence[str]):
        prompt = self.config.prompt
        return self._tokenizer.encode_batch([prompt + text for text in texts] if prompt else list(texts))

    def _run(self, encodings) -> tuple[np.ndarray, np.ndarray]:
        """The transformer's token vectors (b, t, d) and the attention mask (b, t) of a padded batch."""
        length = max(len(encoding.ids) for encoding in encodings)
        arrays = {
            "input_ids": np.full((len(encodings), length), self.config.pad_token_id, dtype=np.int64),
            "attention_mask": np.zeros((len(encodings), length), dtype=np.int64),
            "token_type_ids": np.zeros((len(encodings), length), dtype=np.int64),
        }
        for row, encoding in enumerate(encodings):
            arrays["input_ids"][row, : len(encoding.ids)] = encoding.ids
            arrays["attention_mask"][row, : len(encoding.ids)] = 1
            arrays["token_type_ids"][row, : len(encoding.ids)] = encoding.type_ids
        feeds = {name: arrays[name] for name in self.config.inputs}
        return self._graph(feeds), arrays["attention_mask"]

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        weights = mask[..., None].astype(np.float32)  # (b, t, 1)
        if self.config.pooling == "cls":
            return hidden[:, 0]
        if self.config.pooling == "max":
            return np.where(weights > 0, hidden, -1e9).max(axis=1)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def _read_tokenizer(tokenizers, path: Path):
    """A tokenizer file, or :class:`ModelError` naming it (the library raises a bare ``Exception``)."""
    try:
        return tokenizers.Tokenizer.from_file(str(path))
    except Exception as error:  # noqa: BLE001 - a damaged file's only signal is a bare Exception
        raise ModelError(f"{path} cannot be read ({error}): the export is damaged") from None


@dataclass(frozen=True)
class TowersManifest:
    """``dualsearch-towers.json``: an exported model, one tower directory per side."""

    model: str  # where the PyTorch towers came from ("default", a path or a hub id)
    weights_sha256: str  # the whole PyTorch model's parameter hash
    dimension: int
    routes: list[str]  # as the PyTorch model's Router had them ([] for one model serving both sides)
    backend: str
    sides: dict[str, str]  # "query"/"document" -> tower sub-directory (the same one for a plain model)
    format: int = TOWER_FORMAT

    @classmethod
    def read(cls, directory: Path) -> TowersManifest:
        return read_record(cls, Path(directory) / TOWERS_FILE, "an exported towers directory")

    def write(self, directory: Path) -> None:
        write_record(self, Path(directory) / TOWERS_FILE)


def is_towers_dir(path: str | Path) -> bool:
    """True for a directory written by ``dualsearch export``."""
    return (Path(path) / TOWERS_FILE).is_file()


class OnnxEncoder:
    """An :class:`~dualsearch.towers.contract.Encoder` whose query tower (and document tower, when given) run on
    ONNX Runtime.

    Without a document tower, document work is handed to ``load_documents()``, called once on first
    need: an index's light query path (:mod:`dualsearch.index.query_tower`) searches without torch and loads
    the full towers only to encode documents.

    Example:
        >>> encoder = OnnxEncoder.load("towers-dir")  # doctest: +SKIP
        >>> encoder.encode_queries(["what is tea"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self,
        query: OnnxTower,
        identity: TowerIdentity,
        document: OnnxTower | None = None,
        load_documents: Callable[[], Encoder] | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if document is None and load_documents is None:
            raise ValueError("an OnnxEncoder needs a document tower or a way to load one")
        self.query_tower, self.document_tower = query, document
        self._load_documents, self._documents_encoder = load_documents, None
        self._identity = identity
        self.batch_size = batch_size
        self.model_name = identity.model
        self.directory: Path | None = None  # the towers directory it was loaded from (Ray workers load it too)

    @classmethod
    def load(cls, directory: str | Path, batch_size: int = BATCH_SIZE, model_name: str | None = None) -> OnnxEncoder:
        """Open a towers directory written by ``dualsearch export`` (``model_name``: what to report as the
        towers' origin instead of the one recorded at export). Calibrated towers report the directory
        itself: another export of the same weights, calibrated on other texts, would encode differently,
        so an index they built must come back to them to add or re-encode documents."""
        from dualsearch.towers.weights import model_reference

        directory = Path(directory)
        manifest = TowersManifest.read(directory)
        query = OnnxTower(directory / manifest.sides["query"])
        same = manifest.sides["document"] == manifest.sides["query"]
        document = query if same else OnnxTower(directory / manifest.sides["document"])
        calibrated = document.config.backend in CALIBRATED_BACKENDS
        identity = TowerIdentity(
            model_name or (model_reference(str(directory)) if calibrated else manifest.model),
            manifest.weights_sha256,
            manifest.dimension,
            tuple(manifest.routes),
            query_weights_sha256=query.config.source_weights_sha256,
            document_weights_sha256=document.config.source_weights_sha256,
            query_backend=query.config.backend,
            document_backend=document.config.backend,
            similarity=query.config.similarity,
        )
        encoder = cls(query, identity, document=document, batch_size=batch_size)
        encoder.directory = directory
        return encoder

    @property
    def dimension(self) -> int:
        return self._identity.dimension

    def identity(self) -> TowerIdentity:
        return self._identity

    def encode_queries(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self.query_tower.encode(check_texts(texts, "query"), self.batch_size, bounded_padding=True)

    def encode_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        texts = check_texts(texts, "document")
        if self.document_tower is None:
            return self.documents_encoder().encode_documents(texts, show_progress=show_progress)
        return self.document_tower.encode(texts, self.batch_size)

    @property
    def document_window(self) -> int:
        return self.document_tower.window if self.document_tower else self.documents_encoder().document_window

    def document_token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        if self.document_tower is None:
            return self.documents_encoder().document_token_spans(texts)
        return self.document_tower.token_spans(texts)

    def token_vectors(self, texts: Sequence[str], side: str) -> list[TokenVectors]:
        texts = check_texts(texts, side)
        if side == "query":
            return self.query_tower.token_vectors(texts)
        if self.document_tower is None:
            return self.documents_encoder().token_vectors(texts, side)
        return self.document_tower.token_vectors(texts)

    def export_query_tower(self, out_dir) -> None:
        """Copy the query tower's directory to ``out_dir`` (published by one rename)."""
        copy_tower(self.query_tower.directory, Path(out_dir))

    def documents_encoder(self) -> Encoder:
        """What runs the document tower: this encoder, or the one it loads on first use."""
        if self.document_tower is not None:
            return self
        if self._documents_encoder is None:
            self._documents_encoder = self._load_documents()
        return self._documents_encoder


def copy_tower(source: Path, out_dir: Path) -> None:
    """Copy an exported tower directory, published by one rename."""
    with staged_directory(out_dir) as staged:
        shutil.copytree(source, staged, dirs_exist_ok=True)
