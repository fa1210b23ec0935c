"""How a search combines the towers and BM25 by default: :class:`SearchSettings`.

An index records the settings it was built with (``manifest.json``, key ``search``); a query can
override any of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from dualsearch.defaults import DENSE_WEIGHT, FUSION, FUSION_CANDIDATES, MODE, RRF_K
from dualsearch.errors import InvalidInputError
from dualsearch.fusion import FUSIONS

MODES = ("hybrid", "dense", "lexical")


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
            :mod:`dualsearch.priors`.
        prior_weight: The prior's weight (0: the prior is off).

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

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInputError(f"unknown search mode {self.mode!r}; choose from {', '.join(MODES)}")
        if self.fusion not in FUSIONS:
            raise InvalidInputError(f"unknown fusion {self.fusion!r}; choose from {', '.join(FUSIONS)}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise InvalidInputError(f"dense_weight must be in [0, 1], got {self.dense_weight}")
        if self.rrf_k < 0 or self.candidates < 1:
            raise InvalidInputError(f"rrf_k must be >= 0 and candidates >= 1, got {self.rrf_k}, {self.candidates}")
        if not 0.0 <= self.prior_weight < float("inf"):
            raise InvalidInputError(f"prior_weight must be a number of at least 0, got {self.prior_weight}")
        if self.prior_weight and not self.prior_field:
            raise InvalidInputError("a prior_weight needs a prior_field (the metadata field to rank with)")

    @property
    def uses_prior(self) -> bool:
        return bool(self.prior_field) and self.prior_weight > 0

    def with_overrides(self, **overrides: Any) -> SearchSettings:
        """These settings with the given non-None values replaced."""
        return dataclasses.replace(self, **{name: value for name, value in overrides.items() if value is not None})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SearchSettings:
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in known})
