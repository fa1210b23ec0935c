"""How to build an index: :class:`IndexConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from dualsearch.defaults import CALIBRATION_QUERIES, CHUNK_SIZE, NPROBE_TARGET, SEED
from dualsearch.errors import InvalidInputError
from dualsearch.index.passages import PassageConfig


@dataclass(frozen=True)
class IndexConfig:
    """How to build an index.

    Attributes:
        factory: FAISS factory string; None means ``IVF,Flat`` with lists derived from the corpus.
        chunk_size: Documents read, encoded, checkpointed and written per step (bounds memory).
        seed: Seed of the training sample and of k-means.
        nprobe_target: Overlap@10 with exact search that the default nprobe must reach for
            pseudo-queries: the opening words of sampled documents, encoded by the query tower.
            (Document vectors themselves find their neighbours far more easily than queries do;
            these pseudo-queries tracked real SciFact train and NFCorpus dev queries within
            0.01-0.03 of overlap.)
        calibration_queries: How many sampled documents calibrate nprobe.
        passage_window: Tokens of text per passage (None: the document tower's window).
        passage_stride: Tokens between passage starts (None: a share of the window, see
            :mod:`dualsearch.index.passages`).
        max_passages: At most this many passages a document (None: all it takes).
        lead_passage: Also encode each document's first paragraph alone, when text follows it
            (:mod:`dualsearch.index.passages`); the default index does.
        filter_fields: Metadata fields to index for filtering (any field can be filtered on;
            declared ones are fast on large corpora).
        on_disk: Keep the IVF inverted lists in a file that searches memory-map
            (:mod:`dualsearch.index.ondisk`), built from shards: for indexes larger than memory.

    Example:
        >>> IndexConfig(factory="Flat").chunk_size
        256
        >>> IndexConfig(chunk_size=0)
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: chunk_size must be at least 1, got 0
    """

    factory: str | None = None
    chunk_size: int = CHUNK_SIZE
    seed: int = SEED
    nprobe_target: float = NPROBE_TARGET
    calibration_queries: int = CALIBRATION_QUERIES
    passage_window: int | None = None
    passage_stride: int | None = None
    max_passages: int | None = None
    lead_passage: bool = False
    filter_fields: tuple[str, ...] = ()
    on_disk: bool = False

    @property
    def passages(self) -> PassageConfig:
        return PassageConfig(self.passage_window, self.passage_stride, self.max_passages, self.lead_passage)

    def __post_init__(self) -> None:
        self.passages  # noqa: B018  (validates the passage settings)
        if any(not isinstance(field, str) or not field for field in self.filter_fields):
            raise InvalidInputError(f"filter fields must be non-empty strings, got {list(self.filter_fields)}")
        if self.on_disk and self.factory is not None and "IVF" not in self.factory:
            raise InvalidInputError(f"on-disk inverted lists need an IVF index, not {self.factory!r}")
        if self.chunk_size < 1:
            raise InvalidInputError(f"chunk_size must be at least 1, got {self.chunk_size}")
        if not 0 < self.nprobe_target <= 1:
            raise InvalidInputError(f"nprobe_target must be in (0, 1], got {self.nprobe_target}")
        if self.calibration_queries < 1:
            raise InvalidInputError(f"calibration_queries must be at least 1, got {self.calibration_queries}")
