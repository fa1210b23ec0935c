"""The default index (over the built-in standard-library corpus): where it lives, and building it once."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from dualsearch.defaults import DEFAULT_CORPUS, DEFAULT_INDEX, DEFAULT_MODEL, STDLIB_MODEL, home_dir
from dualsearch.index.layout import is_index_dir
from dualsearch.index.manifest import FORMAT_VERSION
from dualsearch.ranking.settings import SearchSettings

logger = logging.getLogger(__name__)

# The default index ranks with its own settings, chosen on its dev questions and known items
# (bench/stdlib_dev.py, results/stdlib_dev.json; never on the judged set of bench/stdlib_search.py),
# with the towers it is built with (the stdlib query tower since 0.5.0, trained again with the FAQ and
# anchor pairs in 0.6.0; both stdlib towers since 0.7.0, which kept the setting; both trained again
# with reference descriptions in 0.8.0): the towers' share in the fusion, and the weight of the
# ``usage`` prior (how often the library's own code uses a name: dualsearch.corpora.stdlib_usage).
# Chosen again whenever the towers change: each wanted its own weights. The 0.8.0 towers want the
# whole fusion weight: BM25's candidates still join the pool, scored by the towers alone.
STDLIB_DENSE_WEIGHT = 1.0
STDLIB_PRIOR_FIELD = "usage"
STDLIB_PRIOR_WEIGHT = 0.15
# What users look up is mostly a module's functions and classes, not a method or an attribute: both
# kinds gain this much (dualsearch.ranking.boosts), chosen on the same dev sets.
STDLIB_KIND_BOOST = 0.08


def default_index_dir() -> Path:
    """``$DUALSEARCH_HOME/stdlib-py3.X-vN`` (default home: ``~/.cache/dualsearch``; N: the extraction
    version, so an index of older extraction code is not reused; likewise the index format)."""
    from dualsearch.corpora.stdlib_docs import EXTRACTION_VERSION

    python = f"py{sys.version_info.major}.{sys.version_info.minor}"
    return home_dir() / f"stdlib-{python}-v{EXTRACTION_VERSION}-format{FORMAT_VERSION}"


def stdlib_settings() -> SearchSettings:
    """How the default index ranks: hybrid, with the built-in corpus's fusion weight, usage prior and
    boost of functions and classes."""
    return SearchSettings(
        dense_weight=STDLIB_DENSE_WEIGHT,
        prior_field=STDLIB_PRIOR_FIELD,
        prior_weight=STDLIB_PRIOR_WEIGHT,
        boosts=kind_boosts(STDLIB_KIND_BOOST),
    )


def kind_boosts(weight: float) -> tuple:
    """The default index's boosts: ``weight`` for functions and for classes (none at 0)."""
    return tuple(("kind", kind, weight) for kind in ("function", "class")) if weight else ()


def resolve_index_dir(name: str | Path, show_progress: bool = False) -> Path:
    """The directory for an index argument: ``default`` means the default index, built on first use.

    With ``show_progress``, the first build says on stderr that it happens once and where the index
    goes, shows a bar while it encodes, and says how long it took."""
    if str(name) != DEFAULT_INDEX or is_index_dir(Path(name)):
        return Path(name)
    index_dir = default_index_dir()
    if not is_index_dir(index_dir):
        python = sys.version.split()[0]
        _status(
            show_progress,
            f"Building the index of the Python {python} standard library docs, once: later runs reuse it from "
            f"{index_dir}. First the towers are exported to ONNX int8 (once), then the docs are extracted "
            "and encoded.",
        )
        started = time.perf_counter()
        count = build_default_index(index_dir, show_progress=show_progress)
        seconds = time.perf_counter() - started
        _status(show_progress, f"Built the default index ({count:,} documents) in {seconds:.0f} s.")
    else:
        add_missing_query_tower(index_dir)
        update_default_index(index_dir, show_progress)
    return index_dir


# Beside the default index: which stdlib towers built it (dualsearch.towers.weights.stdlib_towers_id)
TOWERS_FILE = "stdlib-towers.txt"


def build_default_index(index_dir: Path, model: str = STDLIB_MODEL, show_progress: bool = False) -> int:
    """Index the built-in corpus at ``index_dir`` with ``model``'s towers and the default index's
    settings; returns the document count."""
    from dualsearch.towers.backends import load_encoder
    from dualsearch.towers.weights import stdlib_towers_id
    from dualsearch.write.build import IndexConfig, index_corpus

    report, _ = index_corpus(
        DEFAULT_CORPUS,
        index_dir,
        load_encoder(model),
        config=IndexConfig(lead_passage=True),  # docstrings open with their summary (PEP 257)
        show_progress=show_progress,
        search_settings=stdlib_settings(),
    )
    if model == STDLIB_MODEL:
        (Path(index_dir) / TOWERS_FILE).write_text(stdlib_towers_id(), encoding="utf-8")
    return report.document_count


def update_default_index(index_dir: Path, show_progress: bool = False) -> None:
    """Bring a default index cached by an older dualsearch to today's towers and settings (once): with
    other towers than the ones this dualsearch ships, or other search settings, it is built again over
    itself with the stdlib towers. That copies every document's vector when the document tower is the
    same, and encodes the corpus again (a minute or two) when it changed."""
    from dualsearch.index.layout import current_version_dir
    from dualsearch.index.manifest import Manifest
    from dualsearch.towers.weights import stdlib_towers_id

    manifest = Manifest.read(current_version_dir(index_dir))
    marker = Path(index_dir) / TOWERS_FILE
    recorded = marker.read_text(encoding="utf-8") if marker.is_file() else None
    same_settings = SearchSettings.from_dict(manifest.search) == stdlib_settings()
    if manifest.model == STDLIB_MODEL and same_settings and recorded == stdlib_towers_id():
        return
    if manifest.model not in (DEFAULT_MODEL, STDLIB_MODEL):
        return  # towers someone chose: theirs to change
    _status(
        show_progress,
        f"Giving {index_dir} this dualsearch's towers tuned on Python questions, once (documents are encoded "
        "again only if the document tower changed).",
    )
    build_default_index(index_dir, show_progress=show_progress)


def _status(show: bool, line: str) -> None:
    """A line of progress on stderr (beside the bar, through tqdm so that it does not break the bar), and
    in the log."""
    logger.info(line)
    if show:
        from tqdm.auto import tqdm

        tqdm.write(line, file=sys.stderr)


def add_missing_query_tower(index_dir: Path) -> None:
    """Give a default index cached by an older dualsearch its ONNX query tower (once, seconds), so it
    is searched without torch like a new one; any other index gains it from `dualsearch reindex`."""
    from dualsearch.index.layout import current_version_dir
    from dualsearch.index.manifest import Manifest
    from dualsearch.index.query_tower import find_light_tower, save_query_tower

    manifest = Manifest.read(current_version_dir(index_dir))
    if find_light_tower(index_dir, manifest) is None and manifest.query_weights_sha256:
        from dualsearch.towers.backends import load_encoder

        logger.info("adding the ONNX query tower to %s (once)", index_dir)
        save_query_tower(index_dir, load_encoder(manifest.model, manifest.query_backend))
