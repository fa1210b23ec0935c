"""Write a fine-tuned tower as a low-rank change to its base (the file :mod:`dualsearch.towers.tower_delta` reads).

Towers trained with LoRA (``lora_rank``) change each linear layer by a matrix of rank ``lora_rank``
(scaled by the interpolation weight, which keeps the rank), so factoring the change by SVD at that
rank is exact up to float rounding; :func:`low_rank_delta` reports the largest difference of the
reconstruction, so a change that is not low-rank (full fine-tuning) shows as a large error rather
than shipping quietly degraded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dualsearch.towers.tower_delta import BASE_KEY, DOWN, FULL, RANK_KEY, UP

UNCHANGED = 0.0  # a parameter whose change is exactly this everywhere is left out of the file


def low_rank_delta(tuned, base, rank: int, base_sha256: str, dtype=np.float16) -> tuple[dict[str, np.ndarray], float]:
    """The change from ``base`` to ``tuned`` (two modules with the same parameter names), matrices
    factored at ``rank``, vectors whole, in ``dtype``; and the largest absolute difference between
    the tuned weights and base + the stored change."""
    import torch

    base_parameters = dict(base.named_parameters())
    arrays: dict[str, np.ndarray] = {BASE_KEY: np.array(base_sha256), RANK_KEY: np.array(rank)}
    worst = 0.0
    with torch.no_grad():
        for name, tuned_parameter in tuned.named_parameters():
            change = tuned_parameter.detach().float() - base_parameters[name].detach().float()
            if not torch.any(change != UNCHANGED):
                continue
            if change.ndim == 2 and min(change.shape) > rank:
                left, values, right = torch.linalg.svd(change, full_matrices=False)
                scale = values[:rank].sqrt()
                up = (left[:, :rank] * scale).numpy().astype(dtype)
                down = (scale[:, None] * right[:rank]).numpy().astype(dtype)
                arrays[name + UP], arrays[name + DOWN] = up, down
                stored = torch.from_numpy(up.astype(np.float32) @ down.astype(np.float32))
            else:
                arrays[name + FULL] = change.numpy().astype(dtype)
                stored = torch.from_numpy(arrays[name + FULL].astype(np.float32))
            worst = max(worst, float((stored - change).abs().max()))
    return arrays, worst


def save_delta(arrays: dict[str, np.ndarray], path: Path) -> Path:
    """Write ``arrays`` as an uncompressed ``.npz`` (byte-identical for identical arrays)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    return path
