"""Towers loaded on first use, so the CLI refuses bad input before the seconds a model load takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class LazyTowers:
    """Stands in for an :class:`~dualsearch.towers.contract.Encoder` and loads it at the first attribute asked for.

    A command given a malformed corpus, a damaged index or a wrong ``--corpus`` then fails in the
    validation that runs before any encoding, without first loading torch and the weights.

    Example:
        >>> from dualsearch.testing import FakeEncoder
        >>> loads = []
        >>> towers = LazyTowers(lambda: loads.append(1) or FakeEncoder(dimension=8))
        >>> len(loads)
        0
        >>> towers.dimension, towers.batch_size, len(loads)
        (8, 32, 1)
    """

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load = load
        self._encoder = None

    def loaded_encoder(self) -> Any:
        """The encoder itself, loaded now if it was not yet."""
        if self._encoder is None:
            self._encoder = self._load()
        return self._encoder

    def __getattr__(self, name: str) -> Any:  # only called for names this object does not have itself
        if name.startswith("__"):
            raise AttributeError(name)
        if self._encoder is None:
            self._encoder = self._load()
        return getattr(self._encoder, name)
