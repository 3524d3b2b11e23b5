"""Pictures for the dashboard: the finest level's confusion matrix and a grid of sample predictions.

``EmotionMedia`` works with any ``affectlab.modules.emotion.EmotionTask``: it reads the finest level's
torchmetrics ``MulticlassConfusionMatrix`` of the module's validation metrics (callbacks run before the
module's own epoch end, which resets them) and runs the model on a fixed set of validation images;
for other modules it does nothing. Images go to W&B when a ``WandbLogger`` is attached and to
``<run folder>/media/`` as PNG either way, so they can be looked at without a dashboard.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from affectlab.callbacks.publish import display_rgb, input_normalization, publish  # noqa: E402


def confusion_figure(matrix: torch.Tensor, names: tuple[str, ...], title: str) -> plt.Figure:
    """Row-normalised confusion matrix (rows: true class, columns: predicted)."""
    m = matrix.float()
    norm = m / m.sum(1, keepdim=True).clamp(min=1)
    size = max(4.0, 0.45 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(norm.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(names) <= 12:
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.tight_layout()
    return fig


def denormalize(images: torch.Tensor, trainer: L.Trainer | None = None) -> np.ndarray:
    """``B×C×H×W`` batch images (uint8, or standardised as the datamodule declares) → ``B×H×W×3`` floats in [0, 1]."""
    return display_rgb(images.cpu(), input_normalization(trainer)).permute(0, 2, 3, 1).float().numpy()


def prediction_grid(images: torch.Tensor, truth: list[str], predicted: list[str], confidence: list[float],
                    columns: int = 8, trainer: L.Trainer | None = None) -> plt.Figure:
    """Sample images titled with the predicted class (green when right, red when wrong)."""
    pictures = denormalize(images, trainer)
    rows = (len(pictures) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(1.8 * columns, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, picture, t, p, c in zip(axes.flat, pictures, truth, predicted, confidence, strict=False):
        ax.imshow(picture)
        ax.set_title(f"{p} {c:.2f}\n(true {t})", fontsize=7, color="green" if p == t else "red")
    fig.tight_layout()
    return fig


class EmotionMedia(L.Callback):
    """Log a confusion matrix and a prediction grid at the end of validation.

    Args:
        num_images: how many fixed validation images the grid shows.
        every_n_epochs: how often (validation epochs) to draw.
    """

    def __init__(self, num_images: int = 16, every_n_epochs: int = 1) -> None:
        self.num_images = num_images
        self.every_n_epochs = max(1, every_n_epochs)
        self._fixed: dict[str, Any] | None = None

    def _fixed_batch(self, trainer: L.Trainer) -> dict[str, Any] | None:
        if self._fixed is None:
            loaders = trainer.val_dataloaders
            loader = loaders[0] if isinstance(loaders, list | tuple) else loaders
            if loader is None:
                return None
            images, labels = [], []
            for batch in loader:
                # Through the model's batch-transfer hook, as in validation: uint8 images get standardised.
                batch = trainer.strategy.batch_to_device(batch)
                if batch["image"].numel():
                    images.append(batch["image"].cpu())
                    labels.append(batch["label"].cpu())
                if sum(len(x) for x in images) >= self.num_images:
                    break
            if not images:
                return None
            self._fixed = {"image": torch.cat(images)[: self.num_images], "label": torch.cat(labels)[: self.num_images]}
        return self._fixed

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not hasattr(pl_module, "taxonomy") or not hasattr(pl_module, "compute") \
                or trainer.current_epoch % self.every_n_epochs:
            return
        metrics = getattr(pl_module, "metrics", {})
        # Every rank takes part: computing a torchmetrics metric gathers its state across processes.
        confusion = metrics["val"].confusion.compute().cpu() if "val" in metrics else None
        if not trainer.is_global_zero:
            return
        taxonomy = pl_module.taxonomy
        if confusion is not None:
            publish(trainer, "val/confusion_matrix", confusion_figure(confusion, taxonomy.leaves,
                                                   f"confusion, {taxonomy.level_names[-1]} (epoch {trainer.current_epoch})"))
        fixed = self._fixed_batch(trainer)
        if fixed is None:
            return
        with torch.no_grad():
            probs = pl_module.compute(fixed["image"].to(pl_module.device))["probs"][-1].float().cpu()
        conf, pred = probs.max(1)
        names = taxonomy.leaves
        publish(trainer, "val/predictions", prediction_grid(fixed["image"], [names[i] for i in fixed["label"]],
                                                            [names[i] for i in pred], conf.tolist(), trainer=trainer))
