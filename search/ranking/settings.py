"""How a search combines the towers and BM25 by default: :class:`SearchSettings`.

An index records the settings it was built with (``manifest.json``, key ``search``); a query can
override any of them. A model directory written by ``dualsearch finetune`` recommends its own,
chosen on its dev set (:data:`SEARCH_SETTINGS_NAME`, read by :func:`model_search_settings`): an
index built with that model starts from them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualsearch.defaults import DENSE_WEIGHT, FUSION, FUSION_CANDIDATES, MODE, RRF_K
from dualsearch.errors import IndexCorruptError, InvalidInputError
from dualsearch.index.manifest import MANIFEST_NAME, Manifest
from dualsearch.ranking.boosts import check_boosts
from dualsearch.ranking.fusion import FUSIONS
from dualsearch.ranking.weights import check_weight
from dualsearch.records import record_from_json

MODES = ("hybrid", "dense", "lexical")
MAX_CANDIDATES = 10_000  # each side's candidates are scored one by one in Python: beyond, a search takes seconds
SEARCH_SETTINGS_NAME = "search_settings.json"  # beside a fine-tuned model's weights (and its exported towers)


@dataclass(frozen=True)
class SearchSettings:
    """Attributes:
        mode: ``hybrid`` (towers and BM25, fused), ``dense`` (towers only) or ``lexical`` (BM25 only).
        fusion: ``rrf`` (reciprocal-rank fusion) or ``convex`` (weighted sum of min-max scores).
        rrf_k: The constant of reciprocal-rank fusion.
        dense_weight: The towers' weight in the convex fusion, in [0, 1].
        candidates: Documents each side contributes to the fusion (at least ``k``), and documents a
            prior reorders.
        prior_field: A numeric metadata field whose prior joins every score ("": none); see
            :mod:`dualsearch.ranking.priors`.
        prior_weight: The prior's weight (0: the prior is off), at most
            :data:`~dualsearch.ranking.weights.MAX_WEIGHT`, as a boost's weight is.
        boosts: ``(field, value, weight)``: ``weight`` joins the score of every document whose metadata
            ``field`` is ``value`` (:mod:`dualsearch.ranking.boosts`).

    Example:
        >>> SearchSettings().with_overrides(mode="dense").mode
        'dense'
        >>> SearchSettings(mode="fuzzy")
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: unknown search mode 'fuzzy'; choose from hybrid, dense, lexical
    """

    mode: str = MODE
    fusion: str = FUSION
    rrf_k: int = RRF_K
    dense_weight: float = DENSE_WEIGHT
    candidates: int = FUSION_CANDIDATES
    prior_field: str = ""
    prior_weight: float = 0.0
    boosts: tuple[tuple[str, Any, float], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "boosts", check_boosts(self.boosts))  # a manifest's lists become tuples
        if self.mode not in MODES:
            raise InvalidInputError(f"unknown search mode {self.mode!r}; choose from {', '.join(MODES)}")
        if self.fusion not in FUSIONS:
            raise InvalidInputError(f"unknown fusion {self.fusion!r}; choose from {', '.join(FUSIONS)}")
        check_weight(self.dense_weight, "dense_weight", 0.0, 1.0)
        if self.rrf_k < 0 or not 1 <= self.candidates <= MAX_CANDIDATES:
            raise InvalidInputError(
                f"rrf_k must be >= 0 and candidates in 1-{MAX_CANDIDATES}, got {self.rrf_k}, {self.candidates}"
            )
        check_weight(self.prior_weight, "prior_weight", 0.0)
        if self.prior_weight and not self.prior_field:
            raise InvalidInputError("a prior_weight needs a prior_field (the metadata field to rank with)")

    @property
    def uses_prior(self) -> bool:
        return bool(self.prior_field) and self.prior_weight > 0

    @property
    def reranks(self) -> bool:
        """True if a prior or a boost reorders the fused candidates."""
        return self.uses_prior or any(weight for _, _, weight in self.boosts)

    def candidate_depth(self, k: int) -> int:
        """Documents each side ranks before the top ``k`` is cut: more than ``k`` when a fusion, a prior
        or a boost can reorder them.

        Example:
            >>> SearchSettings(mode="dense").candidate_depth(10), SearchSettings(mode="hybrid").candidate_depth(10)
            (10, 100)
        """
        return max(k, self.candidates) if self.mode == "hybrid" or self.reranks else k

    def with_overrides(self, **overrides: Any) -> SearchSettings:
        """These settings with the given non-None values replaced."""
        return dataclasses.replace(self, **{name: value for name, value in overrides.items() if value is not None})

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "search settings") -> SearchSettings:
        """Settings from a JSON object (a manifest's ``search``, a model's file); an unknown key or a value
        out of range is an error naming ``source``."""
        try:
            return record_from_json(cls, values, source, InvalidInputError, check_types=False)
        except InvalidInputError as error:
            message = str(error)
            raise InvalidInputError(message if message.startswith(str(source)) else f"{source}: {message}") from None


def index_search_settings(manifest: Manifest, version_dir: Path) -> SearchSettings:
    """An index version's default search settings, or :class:`IndexCorruptError` naming its manifest
    (an index that cannot be searched is not the searcher's bad input)."""
    try:
        return SearchSettings.from_dict(manifest.search, "search")
    except InvalidInputError as error:
        raise IndexCorruptError(f"{Path(version_dir) / MANIFEST_NAME} is damaged or edited: {error}") from None


def model_search_settings(model: str | Path) -> dict[str, Any]:
    """The search settings a model directory recommends (``{}`` for a hub id, the packaged towers or a
    directory without :data:`SEARCH_SETTINGS_NAME`); a damaged file is an error, not silently ignored.

    Example:
        >>> import tempfile
        >>> model_dir = Path(tempfile.mkdtemp())
        >>> model_search_settings(model_dir)
        {}
        >>> _ = (model_dir / SEARCH_SETTINGS_NAME).write_text('{"settings": {"mode": "dense"}}')
        >>> model_search_settings(model_dir)
        {'mode': 'dense'}
    """
    path = Path(model) / SEARCH_SETTINGS_NAME
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))["settings"]
        SearchSettings.from_dict(settings, str(path))  # validates, and refuses keys it does not know
    except (OSError, ValueError, KeyError, TypeError) as error:  # InvalidInputError is a ValueError
        raise InvalidInputError(
            f"{path} is not a search settings file ({error}); remove it or train the model again"
        ) from None
    return dict(settings)
