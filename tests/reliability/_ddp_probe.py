"""A test-only callback, importable by CLI subprocesses: what each DDP rank trained on and ended with."""

import json
from pathlib import Path

import lightning as L
import torch


class RankProbe(L.Callback):
    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.batch_sizes: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batch_sizes.append(len(batch["image"]))

    def on_train_end(self, trainer, pl_module) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        weights = torch.cat([p.detach().double().flatten() for p in pl_module.parameters()])
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps({
            "world_size": trainer.world_size, "global_step": trainer.global_step,
            "batch_sizes": self.batch_sizes, "skipped": dict(trainer.datamodule.skip_report.counts),
            "weights_sum": float(weights.sum()), "weights_abs_sum": float(weights.abs().sum()),
            "finite": bool(torch.isfinite(weights).all()),
        }))
