"""A tower shipped as a low-rank change to a base tower, merged into the base's weights at load.

A fine-tuned MiniLM tower is 90 MB; what fine-tuning with low-rank adapters changed is a few MB: for
each linear layer ``W``, ``W + U·V`` with ``U`` of shape (out, r) and ``V`` of shape (r, in). A delta
file is a NumPy ``.npz`` (read with ``allow_pickle=False``: no code in it) holding, per changed
parameter of the tower's transformer, either ``<name>|up`` and ``<name>|down`` (the two factors) or
``<name>|full`` (a whole change, for small vectors), plus ``|base`` (the sha256 of the base weights
file it applies to) and ``|rank``. :func:`apply_delta` adds it in float32.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from dualsearch.errors import ModelError

UP, DOWN, FULL, BASE_KEY, RANK_KEY = "|up", "|down", "|full", "|base", "|rank"


def delta_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_delta(path: Path, expected_sha256: str | None = None) -> dict[str, np.ndarray]:
    """The arrays of the delta file at ``path``, after checking its sha256 when one is expected."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"tower delta missing: {path} (a broken install? reinstall dualsearch)")
    if expected_sha256 is not None and (actual := delta_sha256(path)) != expected_sha256:
        raise ModelError(f"tower delta {path} has sha256 {actual}, expected {expected_sha256}")
    with np.load(path, allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


def apply_delta(module, arrays: dict[str, np.ndarray], base_sha256: str) -> int:
    """Add the delta ``arrays`` to the parameters of ``module`` (a transformer) in place; returns how
    many parameters changed. Refuses a delta made for other base weights, or naming a parameter the
    module lacks or with another shape."""
    import torch

    made_for = str(arrays.get(BASE_KEY, ""))
    if made_for != base_sha256:
        raise ModelError(f"the tower delta applies to base weights {made_for[:12]}, not {base_sha256[:12]}")
    parameters = dict(module.named_parameters())
    changed = 0
    with torch.no_grad():
        for name in sorted({key.rsplit("|", 1)[0] for key in arrays if not key.startswith("|")}):
            if name not in parameters:
                raise ModelError(f"the tower delta changes {name!r}, which the tower does not have")
            if name + FULL in arrays:
                change = arrays[name + FULL].astype(np.float32)
            else:
                change = arrays[name + UP].astype(np.float32) @ arrays[name + DOWN].astype(np.float32)
            target = parameters[name]
            if tuple(change.shape) != tuple(target.shape):
                raise ModelError(
                    f"the tower delta for {name!r} has shape {change.shape}, the tower {tuple(target.shape)}"
                )
            target.add_(torch.from_numpy(change).to(target.dtype))
            changed += 1
    return changed
