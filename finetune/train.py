"""Fine-tune query and document towers end to end: data -> pairs (+ hard negatives) -> trainer -> a model
directory that ``dualsearch index --model DIR`` and ``DualEncoder.load(DIR)`` load as they are.

The directory is built in a hidden sibling and moved into place only when complete; beside the
weights it holds ``train_config.json`` (the :class:`FinetuneConfig`, loadable again) and
``train_report.json`` (data sizes, dev metrics before and after, every evaluation, timings, versions).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dualsearch.atomic import publish_directory
from dualsearch.errors import InvalidInputError, TrainingDataError, require
from dualsearch.finetune.config import FinetuneConfig
from dualsearch.finetune.data import TrainingData, load_beir, load_training_data
from dualsearch.finetune.dataset import build_dataset
from dualsearch.finetune.mining import NegativeWindow, bm25_rankings, negatives_for_pairs, tower_rankings
from dualsearch.finetune.sampling import dev_corpus, hold_out, log_frequencies, select_pairs
from dualsearch.index.manifest import library_versions, now_iso
from dualsearch.towers.weights import DOCUMENT_ROUTE, QUERY_ROUTE, model_reference

logger = logging.getLogger(__name__)

CONFIG_NAME, REPORT_NAME, CHECKPOINTS = "train_config.json", "train_report.json", "checkpoints"


@dataclass(frozen=True)
class FinetuneReport:
    """What a run did; also written to ``train_report.json``."""

    out_dir: str
    data: str
    train_pairs: int
    negatives_per_pair: int
    dev_queries: int = 0
    dev_documents: int = 0
    before: dict[str, float] = field(default_factory=dict)  # dev metrics of the base towers
    after: dict[str, float] = field(default_factory=dict)  # dev metrics of the saved towers
    history: list[dict[str, Any]] = field(default_factory=list)  # every evaluation during training
    best_checkpoint: str | None = None  # e.g. "checkpoint-58": the evaluation whose towers were kept
    train_seconds: float = 0.0
    mining_seconds: float = 0.0
    library_versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    trained_towers: str = "both"  # 'both', or 'query' (the document tower is the base's, bit-equal)
    recipe: list[str] = field(default_factory=list)  # the recipe rules that set this run's config, and why
    selection: dict[str, Any] = field(default_factory=dict)  # alpha and document length chosen on dev, scores
    search: dict[str, Any] = field(default_factory=dict)  # the search settings chosen on dev, every candidate's score
    warnings: list[str] = field(default_factory=list)


def finetune(
    data: str | Path,
    out_dir: str | Path,
    config: FinetuneConfig | None = None,
    show_progress: bool = False,
    overwrite: bool = False,
    options: Mapping[str, Any] | None = None,
) -> FinetuneReport:
    """Read training data, hold out dev queries, train the towers, choose on dev what to keep, and save.

    Without ``config`` the run follows the recipe (:func:`dualsearch.finetune.recipe.recipe_config`):
    settings adapted to the data by written rules, with ``options`` (config field -> value) overriding
    them one by one. A ``config`` is used exactly as given, with ``options`` applied on top.

    Example:
        >>> report = finetune("../shared/data/scifact", "models/scifact")  # doctest: +SKIP
        >>> report.after["ndcg@10"] > report.before["ndcg@10"]  # doctest: +SKIP
        True
    """
    from dualsearch.finetune.clicks import is_click_log
    from dualsearch.finetune.recipe import DataShape, recipe_config

    require("accelerate", "finetune", "fine-tuning")  # the sentence-transformers trainer needs it
    options = dict(options or {})
    # bad option values fail here, before the data is read
    given = dataclasses.replace(config or FinetuneConfig(), **options)
    everything = read_training_data(data, given.split, given.corpus)
    reasons: list[str] = []
    if config is None:
        judged = judgements_dir(data, given.corpus)
        shape = DataShape.of(everything, judged, given.min_relevance, click_log=is_click_log(data))
        config, reasons = recipe_config(shape, options)
    else:
        config = given
    train, dev = load_splits(data, config, everything)
    return train_towers(train, out_dir, config, dev, show_progress, overwrite, reasons)


def read_training_data(data: str | Path, split: str = "train", corpus: str | Path | None = None) -> TrainingData:
    """:func:`~dualsearch.finetune.data.load_training_data`, or a JSONL click log (``query``, ``shown``,
    ``clicked``) read against ``corpus`` (:mod:`dualsearch.finetune.clicks`)."""
    from dualsearch.finetune.clicks import is_click_log, load_click_log

    if is_click_log(data):
        if corpus is None:
            raise TrainingDataError(f"{data} is a click log: give the corpus its document ids refer to (--corpus)")
        return load_click_log(data, corpus)[0]
    return load_training_data(data, split)


def judgements_dir(data: str | Path, corpus: str | Path | None) -> Path:
    """Where a ``dev_split`` is read: ``data`` itself, or for a click log the BEIR directory of its
    corpus (a log has no judgements, but the corpus it refers to may have some)."""
    from dualsearch.finetune.clicks import is_click_log

    return Path(corpus) if corpus is not None and is_click_log(data) else Path(data)


def load_splits(
    data: str | Path, config: FinetuneConfig, train: TrainingData | None = None
) -> tuple[TrainingData, TrainingData | None]:
    """Training data and the dev set: a BEIR split (``dev_split``; for a click log, of its corpus's BEIR
    directory), held-out queries (``dev_fraction``) or none. ``train`` is the training split when already
    read."""
    train = train or read_training_data(data, config.split, config.corpus)
    if config.dev_split is not None:
        judged = judgements_dir(data, config.corpus)
        if not (judged / "corpus.jsonl").is_file():
            raise InvalidInputError(
                f"dev_split needs a BEIR directory (the data, or a click log's --corpus); for {data} use dev_fraction"
            )
        dev = load_beir(judged, config.dev_split)
        if judged != Path(data):  # a click log: its query ids are its own, so held out means unseen texts
            return train, without_queries_seen(dev, set(train.queries.values()))
        overlap = sorted(set(dev.qrels) & set(train.qrels))
        if overlap:
            raise TrainingDataError(
                f"{data}: {len(overlap)} queries are in both {config.split!r} and {config.dev_split!r}, "
                f"e.g. {overlap[:3]}"
            )
        return train, dev
    if config.dev_fraction:
        return hold_out(train, config.dev_fraction, config.seed)
    return train, None


def without_queries_seen(dev: TrainingData, seen: set[str]) -> TrainingData:
    """``dev`` without the queries whose text was trained on (a click log may hold a dev query's words)."""
    kept = [query for query in dev.qrels if dev.queries[query] not in seen]
    if len(kept) < len(dev.qrels):
        logger.info(
            "dev: %d of %d queries left out, their text is in the training data",
            len(dev.qrels) - len(kept),
            len(dev.qrels),
        )
    if not kept:
        raise TrainingDataError(f"{dev.source}: every dev query's text is also in the training data")
    return dataclasses.replace(dev, queries={q: dev.queries[q] for q in kept}, qrels={q: dev.qrels[q] for q in kept})


def train_towers(
    train: TrainingData,
    out_dir: str | Path,
    config: FinetuneConfig,
    dev: TrainingData | None = None,
    show_progress: bool = False,
    overwrite: bool = False,
    recipe: list[str] | None = None,
) -> FinetuneReport:
    """Train towers on ``train``, choose on ``dev`` what to keep (:mod:`~dualsearch.finetune.selection`)
    and publish ``out_dir``."""
    from dualsearch.finetune.interpolate import snapshot, towers_of
    from dualsearch.finetune.model import build_training_model, document_length, freeze_document_tower, set_max_lengths
    from dualsearch.finetune.scale import spread_matched_scale
    from dualsearch.finetune.selection import document_lengths, select_or_keep, selection_report, selection_warnings
    from dualsearch.finetune.trainer import evaluation_history, make_trainer

    if config.lora_rank is not None:
        require("peft", "finetune", "LoRA adapters (lora_rank)")  # before anything is read or written
    out_dir = Path(out_dir)
    build_dir = _prepare_build_dir(out_dir, overwrite)
    try:
        model = build_training_model(config.base, config.tied, config.max_query_length, None, config.similarity)
        training_length, saved_lengths = document_lengths(config, document_length(model), dev is not None)
        frozen = frozenset()
        if config.train == "query":
            freeze_document_tower(model)
            frozen = frozenset({DOCUMENT_ROUTE})
        base = snapshot(model)
        set_max_lengths(model, config.max_query_length, training_length)
        if config.scale is None and config.similarity != "cosine":  # matched to cosine's spread, said in the report
            scale, rule = spread_matched_scale(model, train, config.similarity, config.seed)
            config, recipe = dataclasses.replace(config, scale=scale), [*(recipe or []), rule]
            logger.info("%s", rule)
        evaluator = _evaluator(dev, config, show_progress)
        before = evaluator(model) if evaluator else {}
        base_rankings = evaluator.probe_rankings if evaluator else []
        started = time.perf_counter()
        rows = training_dataset(train, config, model, show_progress)
        anchors = _anchors(model, train, config, evaluator, frozen)
        mined = time.perf_counter()
        if config.lora_rank is not None:
            from dualsearch.finetune.lora import add_adapters

            add_adapters(model, config.lora_rank, frozenset(towers_of(model)) - frozen)
        trainer = make_trainer(
            model,
            rows.dataset,
            evaluator,
            config,
            build_dir / CHECKPOINTS,
            show_progress,
            batch_sampler=_batch_sampler(train, rows, config),
            anchors=anchors,
        )
        trainer.train()
        if config.lora_rank is not None:
            from dualsearch.finetune.lora import merge_adapters

            merge_adapters(model)  # plain weights again: interpolation, saving and export as for full training
        trained = time.perf_counter()
        logger.info("trained %d steps in %.1fs", trainer.state.global_step, trained - mined)
        lengths = (config.max_query_length, training_length, saved_lengths)
        selection = select_or_keep(model, evaluator, base, (before, base_rankings), lengths, config, frozen)
        search = _search_choice(model, dev, evaluator, model_reference(str(out_dir)))
        report = FinetuneReport(
            str(out_dir),
            train.source,
            len(rows.dataset),
            rows.negatives_per_pair,
            len(dev.qrels) if dev else 0,
            len(evaluator.document_ids) if evaluator else 0,
            _unprefixed(selection.before),
            _unprefixed(selection.after),
            evaluation_history(trainer),
            _best_evaluation(trainer),
            round(trained - mined, 1),
            round(mined - started, 1),
            library_versions(),
            now_iso(),
            trained_towers=config.train,
            recipe=list(recipe or []),
            selection=selection_report(selection),
            search=asdict(search) if search else {},
            warnings=selection_warnings(selection, evaluator is not None),
        )
        for warning in report.warnings:
            logger.warning("%s", warning)
        saved_config = dataclasses.replace(config, max_document_length=selection.document_length)
        _save(model, build_dir, saved_config, report, model_reference(str(out_dir)), search)
        publish_directory(build_dir, out_dir, replace=True)  # an older model there is replaced whole
        logger.info("saved towers to %s", out_dir)
    except BaseException:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    return report


@dataclass(frozen=True)
class TrainingRows:
    """The trainer's dataset, and which query and documents each of its rows holds (for batching)."""

    dataset: Any  # datasets.Dataset: query, document[, negative...]
    negatives_per_pair: int
    row_queries: list[str]
    row_documents: list[list[str]]  # the positive's id, then its negatives' ids


def training_dataset(
    train: TrainingData, config: FinetuneConfig, model=None, show_progress: bool = False
) -> TrainingRows:
    """The trainer's rows: pairs, with negatives mined, given in the data, or none (``config.negatives``),
    and with ``config.logq`` each row's positive's log frequency as its label."""
    pairs = select_pairs(train, config.min_relevance, config.max_positives_per_query, config.max_pairs, config.seed)
    train, count, mine = negative_plan(train, config)
    negatives = _negatives(train, pairs, count, config, model, show_progress, mine) if count else None
    labels = log_frequencies([d for _, d in pairs]) if config.logq else None
    return TrainingRows(
        build_dataset(train, pairs, negatives, labels),
        count,
        [q for q, _ in pairs],
        [[d, *(negatives[i] if negatives else ())] for i, (_, d) in enumerate(pairs)],
    )


def negative_plan(train: TrainingData, config: FinetuneConfig) -> tuple[TrainingData, int, bool]:
    """The data whose own negatives may be used, negatives per pair, and whether to mine any.

    Example:
        >>> data = TrainingData("t", {}, {}, {}, {("q", "d"): ("n",)})
        >>> [negative_plan(data, FinetuneConfig(negatives=n))[1:] for n in (None, "sampled", "impressions", "mixed")]
        [(1, True), (1, True), (1, False), (2, True)]
        >>> negative_plan(data, FinetuneConfig(negatives="sampled"))[0].negatives
        {}
    """
    given = bool(train.negatives)
    if config.negatives == "sampled":
        return dataclasses.replace(train, negatives={}), config.hard_negatives, True
    if config.negatives == "impressions":
        return train, 1, False
    if config.negatives == "mixed":
        return train, config.hard_negatives + (1 if given else 0), True
    return train, config.hard_negatives or (1 if given else 0), True


def _negatives(
    train: TrainingData, pairs, count: int, config: FinetuneConfig, model, show_progress: bool, mine: bool = True
):
    rankings = []
    mine = mine and config.hard_negatives > 0
    if mine and config.negative_miner in ("bm25", "both"):
        rankings.append(bm25_rankings(train, config.negative_range_max))
    if mine and config.negative_miner in ("towers", "both"):
        from dualsearch.finetune.evaluator import bf16_autocast

        with bf16_autocast(config.bf16):
            rankings.append(tower_rankings(model, train, config.negative_range_max, config.batch_size, show_progress))
    window = NegativeWindow(config.negative_range_min, config.negative_range_max, config.negative_margin)
    return negatives_for_pairs(train, pairs, count, rankings, window, config.seed)


def _anchors(model, train: TrainingData, config: FinetuneConfig, evaluator, frozen: frozenset[str]):
    """With ``config.anchor_weight``: each trained tower's anchor texts and its base vectors of them, the
    query tower's pseudo-queries and the document tower's documents drawn from the training corpus, apart
    from the dev probes (:mod:`dualsearch.finetune.anchor`); a tied tower is anchored on both. Ranking
    anchors score pseudo-queries against documents, so they take both sides even when one tower is frozen."""
    if not config.anchor_weight:
        return None
    from dualsearch.finetune.anchor import ANCHOR_TEXTS, anchor_texts, encode_anchors
    from dualsearch.finetune.model import tower_modules

    probes = frozenset(evaluator.probes) if evaluator else frozenset()
    queries, documents = anchor_texts(train.documents, ANCHOR_TEXTS, config.seed, probes)
    routed = tower_modules(model) is not None
    plan = [(QUERY_ROUTE, queries), (DOCUMENT_ROUTE, documents)]
    anchors = [
        encode_anchors(model, route if routed else None, texts, config.batch_size, config.bf16)
        for route, texts in plan
        if texts and (route not in frozen or config.anchor_kind == "ranking")
    ]
    if not anchors or (config.anchor_kind == "ranking" and len(anchors) < 2):
        raise TrainingDataError(f"{train.source}: no document text to anchor the towers on (anchor_weight)")
    logger.info(
        "anchoring %s on %s texts each (%s), weight %g",
        " and ".join(a.route or "the tied tower" for a in anchors),
        f"{len(queries):,}",
        config.anchor_kind,
        config.anchor_weight,
    )
    return anchors


def _batch_sampler(train: TrainingData, rows: TrainingRows, config: FinetuneConfig):
    """Keep known positives out of each other's batches, or only identical texts (sentence-transformers' sampler)."""
    if not config.avoid_known_positives:
        return None
    from dualsearch.finetune.batching import known_positives_sampler

    positives = {q: {d for d, relevance in judged.items() if relevance > 0} for q, judged in train.qrels.items()}
    return known_positives_sampler(rows.row_queries, rows.row_documents, positives)


def _evaluator(dev: TrainingData | None, config: FinetuneConfig, show_progress: bool):
    if dev is None:
        return None
    from dualsearch.finetune.evaluator import RetrievalEvaluator
    from dualsearch.finetune.selection import probe_queries

    documents = dev_corpus(dev, config.dev_max_documents, config.seed)
    return RetrievalEvaluator(
        dev,
        documents,
        batch_size=config.batch_size,
        bf16=config.bf16,
        show_progress=show_progress,
        probes=probe_queries(documents, seed=config.seed),
        similarity=config.similarity,
    )


def _search_choice(model, dev: TrainingData | None, evaluator, name: str):
    """How an index of the saved towers should rank, chosen on dev (:mod:`~dualsearch.finetune.search_choice`);
    None without a dev set (the engine's defaults then apply)."""
    if evaluator is None:
        return None
    from dualsearch.finetune.search_choice import choose_search_settings

    return choose_search_settings(model, dev, evaluator.document_ids, name)


def _best_evaluation(trainer) -> str | None:
    """``checkpoint-N``: the step whose towers were kept (a LoRA run keeps it in memory, not on disk)."""
    from dualsearch.finetune.lora import BestAdaptersCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, BestAdaptersCallback):
            return f"checkpoint-{callback.best_step}" if callback.best_step is not None else None
    best = trainer.state.best_model_checkpoint
    return Path(best).name if best else None


def _unprefixed(metrics: dict[str, float]) -> dict[str, float]:
    return {name.removeprefix("dev_"): round(value, 6) for name, value in metrics.items()}


def _prepare_build_dir(out_dir: Path, overwrite: bool) -> Path:
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInputError(f"output {out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise InvalidInputError(
            f"output directory {out_dir} is not empty (pass overwrite=True / --overwrite to replace it)"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build_dir = out_dir.parent / f".{out_dir.name}.building-{os.getpid()}"
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir()
    return build_dir


def _save(model, build_dir: Path, config: FinetuneConfig, report: FinetuneReport, name: str, search=None) -> None:
    from dualsearch.finetune.search_choice import save_search_settings

    if not config.keep_checkpoints:
        shutil.rmtree(build_dir / CHECKPOINTS, ignore_errors=True)
    model.save(str(build_dir))
    towers_dir = _save_onnx_towers(model, build_dir, name)
    if search is not None:  # beside the weights and the exported towers: an index of either starts from it
        for directory in (build_dir, towers_dir):
            if directory is not None:
                save_search_settings(search, directory)
    config.write_json(build_dir / CONFIG_NAME)
    (build_dir / REPORT_NAME).write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")


def _save_onnx_towers(model, build_dir: Path, name: str) -> Path | None:
    """Save the towers exported for the default backend beside the weights, so indexing with them
    exports nothing (``--model MODEL/dualsearch-onnx-int8`` runs them without torch at all); their
    directory, or None when there are none."""
    from dualsearch.errors import DualsearchError
    from dualsearch.towers.backends import DEFAULT_BACKEND, shipped_towers_dir
    from dualsearch.towers.dual_encoder import DualEncoder
    from dualsearch.towers.export import export_towers

    if DEFAULT_BACKEND == "torch":
        return None
    towers_dir = shipped_towers_dir(build_dir, DEFAULT_BACKEND)
    try:
        export_towers(DualEncoder(model, model_name=name), towers_dir, DEFAULT_BACKEND)
    except (DualsearchError, OSError, RuntimeError) as error:  # the PyTorch towers are saved: they are the model
        logger.warning("could not export the towers to ONNX (%s); indexing will export them", error)
        return None
    return towers_dir
