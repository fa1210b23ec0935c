"""Export PyTorch towers to ONNX or OpenVINO (fp32 or int8) for :mod:`dualsearch.towers.exported`.

Each tower is exported on its own, because sentence-transformers' own export helpers act on the
first Transformer of a model and a Router holds two. The graph is the transformer only (token vectors
out); pooling, normalisation, truncation and the prompt are recorded in ``tower.json`` and applied
by :class:`~dualsearch.towers.exported.OnnxTower`. Attention is exported in its eager form, which ONNX
Runtime's transformer optimiser fuses into one kernel per layer (the SDPA form is not recognised).
``onnx-int8`` is ONNX Runtime's dynamic quantisation with per-channel weight scales: no calibration
data. ``openvino-int8`` is NNCF's static quantisation (weights and activations), calibrated on texts
the caller passes, the user's own documents: nothing is downloaded. Every export is checked against
the PyTorch tower on fixed texts before it is published, and refused if it disagrees beyond the
backend's bound.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import random
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dualsearch.atomic import staged_directory
from dualsearch.errors import MissingDependencyError, ModelError
from dualsearch.towers.exported import (
    CALIBRATED_BACKENDS,
    EXPORTED_BACKENDS,
    GRAPH_FILE,
    OPENVINO_BACKEND,
    OPENVINO_BACKENDS,
    OPENVINO_GRAPH,
    OPENVINO_INT8_BACKEND,
    TOKENIZER_FILE,
    OnnxTower,
    TowerConfig,
    TowersManifest,
    graph_sha256,
    openvino_module,
)
from dualsearch.towers.weights import DOCUMENT_ROUTE, QUERY_ROUTE

logger = logging.getLogger(__name__)

OPSET = 17
# Lowest cosine between an export's vectors and the PyTorch tower's on CHECK_TEXTS. fp32 differs only
# by kernel rounding; int8 weights move vectors more (bench/backends.py measures what it costs in nDCG).
# bfloat16 arithmetic (OpenVINO's choice on CPUs with native bf16) keeps about 3 significant digits
MIN_COSINE = {"onnx": 1 - 1e-4, "onnx-int8": 0.97, OPENVINO_BACKEND: 0.995, OPENVINO_INT8_BACKEND: 0.97}
# NNCF's default calibration size. Calibration sets the int8 range of every activation, so it should see
# the user's kind of text; the query tower sees each text's opening words (queries are short).
CALIBRATION_TEXTS = 300
CALIBRATION_BATCH = 8
QUERY_CALIBRATION_WORDS = 12
CHECK_TEXTS = (
    "what is tea",
    "Vitamin D deficiency and bone density in older adults: a randomised trial",
    "os.path.join(a, *p) joins one or more path segments intelligently.",
    "Ünïcödé, emoji 🙂 and 中文 all reach the tokenizer as they are.",
    "word " * 600,  # longer than any window: truncation must match
)
# Architectures whose attention ONNX Runtime's "bert" optimiser fuses (the others run unfused).
FUSABLE_MODEL_TYPES = {"bert", "roberta", "xlm-roberta", "camembert", "electra"}
SUPPORTED_POOLING = {"mean", "cls", "max"}


def export_tower(
    encoder, side: str, out_dir: str | Path, backend: str = "onnx", calibration: Sequence[str] = ()
) -> TowerConfig:
    """Export one tower of a :class:`~dualsearch.towers.dual_encoder.DualEncoder` into ``out_dir`` (created by one
    rename; a full one already there is not replaced), check it against PyTorch, and return its ``tower.json``.
    ``calibration``: the texts a calibrated backend quantises with (:func:`calibration_sample`)."""
    import torch

    # In float32 even when the caller encodes under bfloat16 autocast (the fine-tuning recipe does on CPUs
    # with native bf16): a traced bf16 graph does not run on ONNX Runtime's CPU provider, and the check
    # against PyTorch compares float32 with float32.
    with torch.autocast("cpu", enabled=False):
        return _export_tower(encoder, side, out_dir, backend, calibration)


def _export_tower(encoder, side: str, out_dir: str | Path, backend: str, calibration: Sequence[str]) -> TowerConfig:
    if backend not in EXPORTED_BACKENDS:
        raise ModelError(f"unknown export backend {backend!r}; choose one of {', '.join(EXPORTED_BACKENDS)}")
    onnx_modules()
    if backend in OPENVINO_BACKENDS:
        openvino_module()
    if backend in CALIBRATED_BACKENDS:
        nncf_module()
        calibration = _side_calibration(calibration, side)
        if not calibration:
            raise ModelError(f"{backend} is calibrated on your own documents: give some texts to calibrate on")
    else:
        calibration = []
    transformer, pooling = _tower_parts(encoder, side)
    identity = encoder.identity()
    prompt = _prompt(encoder, side)
    if prompt and not getattr(pooling, "include_prompt", True):
        raise ModelError(f"the {side} tower pools without its prompt; its ONNX export is not supported")
    tokenizer = transformer.tokenizer
    inputs = [name for name in tokenizer.model_input_names if name in ("input_ids", "attention_mask", "token_type_ids")]
    with staged_directory(Path(out_dir)) as staged:
        fp32_graph = staged / "fp32.onnx"
        _export_graph(transformer, inputs, fp32_graph)
        if backend in OPENVINO_BACKENDS:  # from the plain graph: ONNX Runtime's fused operators are its own
            feeds = _calibration_feeds(transformer, inputs, prompt, calibration)
            _save_openvino(fp32_graph, staged / OPENVINO_GRAPH, feeds)
            fp32_graph.unlink()
        elif backend == "onnx-int8":
            _optimise(transformer.auto_model.config, fp32_graph)
            _quantise(fp32_graph, staged / GRAPH_FILE)
            fp32_graph.unlink()
        else:
            _optimise(transformer.auto_model.config, fp32_graph)
            fp32_graph.replace(staged / GRAPH_FILE)
        _save_tokenizer(tokenizer, staged / TOKENIZER_FILE)
        config = TowerConfig(
            backend=backend,
            source_weights_sha256=identity.tower_sha256(side),
            graph_sha256=graph_sha256(staged, backend),
            dimension=encoder.dimension,
            max_seq_length=int(transformer.max_seq_length),
            pooling=str(pooling.pooling_mode),
            inputs=inputs,
            pad_token_id=int(tokenizer.pad_token_id or 0),
            prompt=prompt,
            calibration_texts=len(calibration),
            calibration_sha256=texts_sha256(calibration) if calibration else "",
            similarity=identity.similarity,
            normalised=encoder.normalises(side),
        )
        config.write(staged)
        agreement = _check_against_pytorch(encoder, side, staged)
        if agreement < MIN_COSINE[backend]:
            raise ModelError(
                f"the {backend} export of the {side} tower disagrees with PyTorch (lowest cosine {agreement:.6f}, "
                f"bound {MIN_COSINE[backend]}); it was not saved"
            )
        config = dataclasses.replace(config, checked_min_cosine=round(agreement, 7))
        config.write(staged)
    logger.info("exported the %s tower (%s) to %s; lowest cosine to PyTorch %.6f", side, backend, out_dir, agreement)
    return config


def export_towers(
    encoder, out_dir: str | Path, backend: str = "onnx", calibration: Sequence[str] = ()
) -> TowersManifest:
    """Export both towers of ``encoder`` as a towers directory that :class:`OnnxEncoder` loads offline
    (``dualsearch export``), published by one rename. A model without routes is exported once and serves
    both sides (unless its two sides have different prompts). A calibrated backend quantises with a
    seeded sample of ``calibration`` (:func:`calibration_sample`)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ModelError(f"{out_dir} exists and is not empty; choose a new directory")
    identity = encoder.identity()
    shared = not identity.routes and _prompt(encoder, QUERY_ROUTE) == _prompt(encoder, DOCUMENT_ROUTE)
    sides = (
        {QUERY_ROUTE: "tower", DOCUMENT_ROUTE: "tower"}
        if shared
        else {side: side for side in (QUERY_ROUTE, DOCUMENT_ROUTE)}
    )
    manifest = TowersManifest(
        model=identity.model,
        weights_sha256=identity.weights_sha256,
        dimension=identity.dimension,
        routes=list(identity.routes),
        backend=backend,
        sides=sides,
    )
    with staged_directory(out_dir) as staged:
        sample = calibration_sample(calibration)
        for side in (DOCUMENT_ROUTE, QUERY_ROUTE):  # a tower serving both sides is exported as documents'
            directory = sides[side]  # (calibration then sees whole documents, the longest inputs it gets)
            if not (staged / directory).exists():
                export_tower(encoder, side, staged / directory, backend, sample)
        manifest.write(staged)
    return manifest


def onnx_modules():
    """torch's exporter needs onnx; quantisation and the checks need onnxruntime."""
    try:
        import onnx
        import onnxruntime
    except ImportError as error:
        raise MissingDependencyError(f"exporting towers needs {error.name}: pip install onnx onnxruntime") from None
    return onnx, onnxruntime


def _prompt(encoder, side: str) -> str:
    """The prompt sentence-transformers puts before every text of ``side`` ("" for none)."""
    return (getattr(encoder.model, "prompts", None) or {}).get(side, "")


def _tower_parts(encoder, side: str):
    """The tower's Transformer and Pooling (a Normalize may follow; other modules cannot be exported)."""
    modules = list(encoder.tower_modules(side))
    names = [type(module).__name__ for module in modules]
    if names[:2] != ["Transformer", "Pooling"] or names[2:] not in ([], ["Normalize"]):
        chain = " -> ".join(names)
        raise ModelError(f"the {side} tower is {chain}; only Transformer -> Pooling [-> Normalize] exports")
    pooling = modules[1]
    if pooling.pooling_mode not in SUPPORTED_POOLING:
        raise ModelError(f"the {side} tower pools by {pooling.pooling_mode!r}; exportable: {sorted(SUPPORTED_POOLING)}")
    if not getattr(modules[0].tokenizer, "is_fast", False):
        raise ModelError(f"the {side} tower's tokenizer has no fast (Rust) version; its export is not supported")
    return modules[0], pooling


def _export_graph(transformer, inputs: list[str], path: Path) -> None:
    import torch

    model = copy.deepcopy(transformer.auto_model).eval()  # the served tower keeps its attention kernel
    model.set_attn_implementation("eager")

    class TokenVectors(torch.nn.Module):  # positional inputs in, last hidden state out
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(**dict(zip(inputs, tensors))).last_hidden_state

    # Two texts of different lengths: the traced graph must take a padded batch's mask into account.
    sample = transformer.tokenizer(["a query", "a somewhat longer document text"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in [*inputs, "token_vectors"]}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
        torch.onnx.export(
            TokenVectors(),
            tuple(sample[name] for name in inputs),
            str(path),
            input_names=inputs,
            output_names=["token_vectors"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: no onnxscript needed, and a graph ORT's optimiser knows
        )


def _optimise(model_config, path: Path) -> None:
    """Fuse attention, layer norms and GELU (ONNX Runtime's transformer optimiser), where it knows the
    architecture; otherwise the graph runs as exported."""
    if model_config.model_type not in FUSABLE_MODEL_TYPES:
        logger.info("no fusion for %s models: the graph runs unfused", model_config.model_type)
        return
    from onnxruntime.transformers import optimizer

    heads, hidden = model_config.num_attention_heads, model_config.hidden_size
    chatty = [logging.getLogger(name) for name in ("fusion_base", "onnx_model", "onnx_model_bert", "fusion_utils")]
    levels = [log.level for log in chatty]
    for log in chatty:  # each fusion is narrated at INFO; a -v run should show ours, not theirs
        log.setLevel(logging.WARNING)
    try:
        optimised = optimizer.optimize_model(
            str(path), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1
        )
        optimised.save_model_to_file(str(path))
    finally:
        for log, level in zip(chatty, levels):
            log.setLevel(level)


def _quantise(fp32_graph: Path, path: Path) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it advises "pre-processing" on the root logger, for static quantisation
    try:
        quantize_dynamic(
            str(fp32_graph),
            str(path),
            weight_type=QuantType.QInt8,
            per_channel=True,  # one scale per output column: much closer to fp32 than one per matrix
            extra_options={"DefaultTensorType": TensorProto.FLOAT},  # fused ops hide some types from inference
        )
    finally:
        root.setLevel(level)


def _save_openvino(onnx_graph: Path, path: Path, calibration_feeds: list[dict] | None = None) -> None:
    """OpenVINO's own format (``model.xml`` and ``model.bin``). Without calibration the weights stay fp32
    and the precision it computes in is chosen when the graph is loaded, from the CPU; with it, NNCF
    quantises weights and activations to int8 (its transformer preset keeps softmax and layer norms in
    float), setting each activation's range from the calibration batches. SmoothQuant (on by default
    for transformers) is turned off: with it, a text of one word repeated kept only 0.85-0.90 cosine to
    PyTorch's vector (0.98-0.99 without), for about 10% more documents/s (a trial on SciFact, not rerun by a
    script)."""
    openvino = openvino_module()
    model = openvino.convert_model(str(onnx_graph))
    if calibration_feeds:
        nncf = nncf_module()
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

        model = nncf.quantize(
            model,
            nncf.Dataset(calibration_feeds),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(calibration_feeds),
            advanced_parameters=AdvancedQuantizationParameters(
                smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=-1)  # -1: off
            ),
        )
    openvino.save_model(model, str(path), compress_to_fp16=False)


def nncf_module():
    """nncf (with its chatter turned down), or :class:`MissingDependencyError` naming the extra."""
    try:
        import nncf
    except ImportError:
        raise MissingDependencyError(
            "the openvino-int8 backend needs NNCF to quantise: pip install 'dualsearch[openvino]'"
        ) from None
    logging.getLogger("nncf").setLevel(logging.ERROR)  # not nncf.set_log_level: it also sets its handlers' levels
    return nncf


def calibration_sample(texts: Sequence[str], count: int = CALIBRATION_TEXTS, seed: int = 0) -> list[str]:
    """A seeded sample of ``count`` non-blank texts, the same for the same set of texts in any order.

    Example:
        >>> calibration_sample(["b", " ", "a", "c"], count=2) == calibration_sample(["c", "a", "b"], count=2)
        True
    """
    unique = sorted({text for text in texts if text.strip()})
    return sorted(random.Random(seed).sample(unique, min(count, len(unique))))


def texts_sha256(texts: Sequence[str]) -> str:
    return hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()


def _side_calibration(texts: Sequence[str], side: str) -> list[str]:
    """What the tower of ``side`` calibrates on: the texts, or for queries their opening words."""
    if side != QUERY_ROUTE:
        return list(texts)
    return [" ".join(text.split()[:QUERY_CALIBRATION_WORDS]) for text in texts]


def _calibration_feeds(transformer, inputs: list[str], prompt: str, texts: list[str]) -> list[dict]:
    """The graph's inputs for ``texts`` in padded batches, tokenised as the tower tokenises."""
    feeds = []
    for start in range(0, len(texts), CALIBRATION_BATCH):
        batch = [prompt + text for text in texts[start : start + CALIBRATION_BATCH]]
        encoded = transformer.tokenizer(
            batch, truncation=True, max_length=transformer.max_seq_length, padding=True, return_tensors="np"
        )
        feeds.append({name: encoded[name].astype(np.int64) for name in inputs})
    return feeds


def _save_tokenizer(tokenizer, path: Path) -> None:
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # a copy: the live one keeps its settings
    backend.no_truncation()
    backend.no_padding()
    backend.save(str(path))


def _check_against_pytorch(encoder, side: str, tower_dir: Path) -> float:
    """Lowest cosine between the export's vectors and the PyTorch tower's over :data:`CHECK_TEXTS`."""
    texts = list(CHECK_TEXTS)
    expected = encoder.encode_queries(texts) if side == QUERY_ROUTE else encoder.encode_documents(texts)
    actual = OnnxTower(tower_dir).encode(texts)
    return float(np.min(np.sum(expected * actual, axis=1)))
