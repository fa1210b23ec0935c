"""Read a Hugging Face ``datasets`` dataset as a stream of records.

Two sources: a directory written by ``Dataset.save_to_disk`` (Arrow files, memory-mapped, so rows are
read lazily), or ``hf:NAME[:SPLIT]`` for a hub dataset, streamed, for users with the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dualsearch.errors import CorpusError, CorpusNotFoundError

HUB_PREFIX = "hf:"


def is_saved_dataset(path: Path) -> bool:
    """True for a directory written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return path.is_dir() and any(
        (path / name).is_file() for name in ("dataset_info.json", "dataset_dict.json", "state.json")
    )


def _pick_split(dataset: Any, split: str | None, source: str) -> Any:
    if not hasattr(dataset, "keys"):  # a single Dataset, not a DatasetDict
        return dataset
    splits = list(dataset.keys())
    if split is None:
        if len(splits) != 1:
            raise CorpusError(f"{source}: several splits {splits}; name one, e.g. {source}:{splits[0]}")
        split = splits[0]
    if split not in dataset:
        raise CorpusError(f"{source}: no split {split!r}; available: {splits}")
    return dataset[split]


def read_hf(source: str, split: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(location, record)`` for each row of a saved or hub dataset.

    Args:
        source: A ``save_to_disk`` directory, or ``hf:NAME`` / ``hf:NAME:SPLIT`` for the hub.
        split: The split of a dataset dict (default: the only one there is).
    """
    import datasets

    if source.startswith(HUB_PREFIX):
        name, _, hub_split = source[len(HUB_PREFIX) :].partition(":")
        try:
            dataset = datasets.load_dataset(name, split=hub_split or split or "train", streaming=True)
        except Exception as error:  # network and hub errors come in many types
            raise CorpusNotFoundError(f"{source}: cannot load the Hugging Face dataset ({error})") from None
    else:
        path = Path(source)
        if not is_saved_dataset(path):
            raise CorpusNotFoundError(f"{source}: not a dataset directory written by save_to_disk")
        dataset = _pick_split(datasets.load_from_disk(str(path)), split, source)
    for row_number, record in enumerate(dataset, start=1):
        yield f"{source}: record {row_number}", dict(record)
