"""Random-number state in checkpoints, so a resumed run continues exactly where it stopped.

Lightning checkpoints weights, optimiser and loop progress but not the RNG states that drive data
shuffling, augmentation and dropout. This callback stores them at every checkpoint and puts them
back when training starts from one, so fitting 2 epochs equals fitting 1, stopping and resuming.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states


class ResumableRNG(L.Callback):
    """Save the Python, NumPy and torch RNG states in checkpoints; restore them on resume."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        states = _collect_rng_states(include_cuda=False)
        # Plain Python types only, so checkpoints load with torch.load(weights_only=True).
        kind, keys, pos, has_gauss, cached = states["numpy"]
        states["numpy"] = [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]
        return {"rng_states": states}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        states = state_dict.get("rng_states")
        if states is not None:
            kind, keys, pos, has_gauss, cached = states["numpy"]
            states = {**states, "numpy": (kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached)}
        self._pending = states

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After the sanity check, which draws worker seeds from the global generator.
        if self._pending is not None:
            _set_rng_states(self._pending)
            self._pending = None
