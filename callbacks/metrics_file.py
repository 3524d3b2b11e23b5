"""``metrics.json`` in the run folder: what a run measured, readable without W&B or TensorBoard.

The local sweep agent (``experiments/sweep.py``) reads a trial's score from this file, and its
per-epoch history feeds hyperband early termination. Because the agent and the trial are two
processes, the file is the whole contract between them: the trial writes it after every
validation, the agent may ask the trial to stop by creating ``STOP`` next to it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

METRICS_FILE = "metrics.json"
STOP_FILE = "STOP"


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The finite scalar entries of ``trainer.callback_metrics`` as plain floats (JSON has no NaN)."""
    values = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            values[key] = float(value)
    return values


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (temp file + rename) so a reader polling the file never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
    os.replace(tmp, path)


class MetricsFile(Callback):
    """Write ``{"history": [...], "final": {...}, "best": {...}, "test": {...}}`` to ``<default_root_dir>/metrics.json``.

    ``history`` holds one entry per validation (``epoch``, ``step`` and every scalar metric logged
    so far); ``final`` the metrics when fit ends; ``best`` the checkpoint callback's monitor and
    best score; ``test`` the ``test/*`` metrics of a test in the same process (``--test_after_fit``). Only global rank 0 writes; under DDP the logged epoch metrics are already synced.

    Args:
        filename: file name inside the run folder.
        stop_file: when a file of this name appears in the run folder, the trainer stops after the
            current validation (all ranks agree first, as EarlyStopping does).
    """

    def __init__(self, filename: str = METRICS_FILE, stop_file: str = STOP_FILE) -> None:
        self.filename = filename
        self.stop_file = stop_file
        self.history: list[dict[str, float]] = []
        self.written: dict[str, Any] = {}

    def _folder(self, trainer: pl.Trainer) -> Path:
        return Path(trainer.default_root_dir)

    def _write(self, trainer: pl.Trainer, **extra: Any) -> None:
        self.written.update(extra)
        if trainer.is_global_zero:
            write_json(self._folder(trainer) / self.filename, {"history": self.history, **self.written})

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # setup runs before a checkpoint is restored: a resumed fit (SLURM requeue, --ckpt_path)
        # gets its earlier epochs back from load_state_dict.
        if stage == "fit":
            self.history, self.written = [], {}

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # on_validation_end runs after the epoch's metrics reach callback_metrics (ModelCheckpoint
        # reads them here too); the sanity check is not an epoch.
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        entry = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        entry.update(scalar_metrics(trainer.callback_metrics))
        self.history.append(entry)
        self._write(trainer)
        requested = (self._folder(trainer) / self.stop_file).exists()
        if trainer.strategy.reduce_boolean_decision(requested, all=False):
            trainer.should_stop = True

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        best: dict[str, Any] = {}
        checkpoint = trainer.checkpoint_callback
        if isinstance(checkpoint, ModelCheckpoint) and checkpoint.monitor:
            score = checkpoint.best_model_score
            best = {"monitor": checkpoint.monitor, "mode": checkpoint.mode,
                    "score": None if score is None else float(score), "path": checkpoint.best_model_path}
        self._write(trainer, final=scalar_metrics(trainer.callback_metrics), best=best)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = scalar_metrics(trainer.callback_metrics)
        self._write(trainer, test={k: v for k, v in metrics.items() if k.startswith("test/")})
