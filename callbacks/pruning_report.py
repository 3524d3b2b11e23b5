"""What gradual global pruning reports and leaves behind (docs/pruning.md).

Per step: the widths of every layer, parameters, FLOPs and the monitored metric, written to the
run folder as ``pruning.csv``, ``pruning.png`` (metric against FLOPs ratio) and
``pruning_layers.png`` (channels each layer lost at each accepted step, one bar per layer and
step). At the end, the two pictures go to W&B through the one picture helper
(``callbacks/publish.py``; keys ``pruning/plot`` and ``pruning/layers``), with the table, a line
plot and one bar chart per step; and the pruned network is saved for deployment: the whole module
pickled with its structure (``module.pt``) and a ``torch.export`` program (``program.pt2``), or a
TorchScript trace when export is not possible.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import WandbLogger
from torch import nn

from affectlab.callbacks.publish import publish

log = logging.getLogger(__name__)


class PruningReport:
    """Writes the per-step table (CSV, PNG, W&B) into ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._rows: list[dict[str, Any]] = []

    def frame(self, rows: list[dict[str, Any]]):
        import pandas as pd

        frame = pd.DataFrame([{**r, "widths": json.dumps(r["widths"])} for r in rows])
        return frame

    def write(self, rows: list[dict[str, Any]], monitor: str, trainer: Any = None, final: bool = False) -> None:
        """Rewrite the CSV and the pictures; when ``final``, also publish them with ``trainer``'s loggers."""
        if not rows:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._rows = rows
        frame = self.frame(rows)
        frame.to_csv(self.root / "pruning.csv", index=False)
        self.plot(frame, monitor)
        self.plot_layers(rows)
        if final:
            self._publish(frame, monitor, trainer)

    def plot(self, frame: Any, monitor: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        for status, marker in (("baseline", "s"), ("accepted", "o"), ("rejected", "x")):
            part = frame[frame["status"] == status]
            if len(part):
                ax.plot(part["flops_ratio"], part[monitor], marker, label=status)
        ax.plot(frame["flops_ratio"], frame[monitor], "-", color="gray", alpha=0.5)
        ax.set_xlabel("FLOPs / unpruned FLOPs")
        ax.set_ylabel(monitor)
        ax.invert_xaxis()
        ax.set_title("Gradually global pruning")
        ax.legend()
        fig.tight_layout()
        fig.savefig(self.root / "pruning.png", dpi=120)
        plt.close(fig)

    @staticmethod
    def removed_per_step(rows: list[dict[str, Any]]) -> list[tuple[int, dict[str, int]]]:
        """``(step, {layer: channels removed})`` for every accepted step, against the network before it."""
        kept = [r for r in rows if r["status"] in ("baseline", "accepted")]
        return [(int(after["step"]), {name: width - after["widths"].get(name, width)
                                      for name, width in before["widths"].items()})
                for before, after in zip(kept, kept[1:], strict=False)]

    def plot_layers(self, rows: list[dict[str, Any]]) -> None:
        """Bar chart: channels removed per layer, one colour per accepted step (``pruning_layers.png``)."""
        steps = self.removed_per_step(rows)
        if not steps:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        layers = list(rows[0]["widths"])
        fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(layers) + 2), 3.8))
        width = 0.8 / len(steps)
        x = np.arange(len(layers))
        for k, (step, removed) in enumerate(steps):
            ax.bar(x + k * width - 0.4 + width / 2, [removed.get(n, 0) for n in layers], width, label=f"step {step}")
        ax.set_xticks(x, layers, rotation=70, ha="right", fontsize=7)
        ax.set_ylabel("channels removed")
        ax.set_title("Channels removed per layer and step")
        ax.legend(fontsize=7, ncols=max(1, len(steps) // 8))
        fig.tight_layout()
        fig.savefig(self.root / "pruning_layers.png", dpi=120)
        plt.close(fig)

    def _publish(self, frame: Any, monitor: str, trainer: Any) -> None:
        """The pictures through ``publish`` (as written in the run folder), the table and charts to W&B."""
        if trainer is None:
            return
        try:
            for key, name, caption in (("pruning/plot", "pruning.png", f"{monitor} against the FLOPs ratio"),
                                       ("pruning/layers", "pruning_layers.png", "channels removed per layer and step")):
                if (self.root / name).is_file():
                    publish(trainer, key, self.root / name, caption=caption)
            for lg in trainer.loggers:
                if not isinstance(lg, WandbLogger):
                    continue
                import wandb

                table = wandb.Table(dataframe=frame)
                media = {"pruning/steps": table,
                         "pruning/metric_vs_flops": wandb.plot.line(
                             table, "flops_ratio", monitor, title=f"{monitor} vs FLOPs ratio")}
                for step, removed in self.removed_per_step(self._rows):
                    bars = wandb.Table(data=[[n, c] for n, c in removed.items()], columns=["layer", "removed"])
                    media[f"pruning/removed_step{step}"] = wandb.plot.bar(
                        bars, "layer", "removed", title=f"channels removed at step {step}")
                lg.experiment.log(media)
        except Exception as err:  # a report must never break a finished run
            warnings.warn(f"could not log the pruning report to W&B: {err}", stacklevel=2)


class _Deployable(nn.Module):
    """The network's forward as a tuple of tensors (what export and TorchScript accept)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.module(x)
        if isinstance(out, torch.Tensor):
            return (out,)
        if isinstance(out, dict):
            return tuple(v for v in out.values() if isinstance(v, torch.Tensor))
        return tuple(out)


def export_network(module: nn.Module, example: torch.Tensor, folder: str | Path) -> dict[str, Path]:
    """Save the pruned network with its structure and as a program; returns the written paths.

    ``module.pt``: ``torch.load(..., weights_only=False)`` gives the thinner module back without
    any code that knows its widths. ``program.pt2``: ``torch.export.load(...).module()(x)``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    was_training = module.training
    module.eval()
    try:
        try:
            torch.save(module, folder / "module.pt")
            written["module"] = folder / "module.pt"
        except (TypeError, AttributeError) as err:  # e.g. under DDP, state that cannot be pickled hangs on the module
            (folder / "module.pt").unlink(missing_ok=True)
            log.warning("could not pickle the whole module (%s); the checkpoint and the program still hold it", err)
        wrapped = _Deployable(module).eval()
        try:
            batch = torch.export.Dim("batch", min=1, max=4096)
            program = torch.export.export(wrapped, (example.repeat(2, *[1] * (example.dim() - 1)),),
                                          dynamic_shapes={"x": {0: batch}})
            torch.export.save(program, folder / "program.pt2")
            written["program"] = folder / "program.pt2"
        except Exception as err:
            log.warning("torch.export failed (%s); writing a TorchScript trace instead", err)
            with torch.no_grad():
                traced = torch.jit.trace(wrapped, example, strict=False)
            traced.save(str(folder / "program.ts"))
            written["program"] = folder / "program.ts"
    finally:
        module.train(was_training)
    return written
