"""LDCAM heat maps of a fixed set of validation images, and their agreement with stimuli maps.

``LDCAMLogger`` takes the first ``num_images`` images of the first validation batch (the
validation loader is not shuffled, so the set is the same every epoch), overlays each level's
LDCAM map ``A_l`` (docs/mdan.md) on the image, and writes one grid per epoch to
``<run>/media/val_ldcam_eNNN.png`` and to W&B (``val/ldcam``) through ``callbacks/publish.py``. When batches carry
EmotionROI's stimuli maps (``batch["stimuli"]``, ``B×H×W`` or ``B×1×H×W`` in [0, 1]) it also logs
how well each level's map agrees with them over the whole validation set.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import matplotlib
import numpy as np
import torch
from torch.nn import functional as F
from torchmetrics.functional.classification import binary_auroc

from affectlab.callbacks.publish import Normalization, display_rgb, input_normalization, publish


def cam_stimuli_agreement(cam: torch.Tensor, stimuli: torch.Tensor, threshold: float = 0.5) -> dict[str, torch.Tensor]:
    """How well class activation maps point at the emotional stimuli.

    Args:
        cam: ``B×h×w`` (or ``h×w``) maps, any scale; resized to the stimuli grid.
        stimuli: ``B×H×W`` (or ``B×1×H×W``, ``H×W``) maps; pixels above ``threshold`` are stimuli.
    Returns:
        ``auc``: ROC AUC of the CAM value as a detector of stimuli pixels, over all pixels of the
        batch (0.5 = no agreement, 1 = every stimuli pixel scores above every other);
        ``inside_outside``: mean CAM inside the stimuli divided by the mean outside (> 1 = agreement).
        NaN where a batch has no stimuli pixel or no background pixel. Images whose map is missing
        (all −1, as the EmotionROI reader marks them) are left out.
    """
    if stimuli.dim() == 4:
        stimuli = stimuli[:, 0]
    if cam.dim() == 2:
        cam = cam[None]
    if stimuli.dim() == 2:
        stimuli = stimuli[None]
    cam = F.interpolate(cam[:, None].float(), size=stimuli.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    nan = cam.new_tensor(float("nan"))
    present = stimuli.flatten(1).amin(1) >= 0  # the EmotionROI reader marks a missing map with -1
    cam, stimuli = cam[present], stimuli[present]
    inside = stimuli > threshold
    if inside.all() or not inside.any():
        return {"auc": nan, "inside_outside": nan}
    auc = binary_auroc(cam.flatten(), inside.flatten().long())
    ratio = cam[inside].mean() / cam[~inside].mean().clamp(min=1e-8)
    return {"auc": auc, "inside_outside": ratio}


def _rgb(image: torch.Tensor, normalization: Normalization | None) -> np.ndarray:
    return display_rgb(image.detach().cpu(), normalization).permute(1, 2, 0).numpy()


def overlay(image: torch.Tensor, cam: torch.Tensor, alpha: float = 0.5,
            normalization: Normalization | None = None) -> np.ndarray:
    """A batch image ``3×H×W`` (uint8 or standardised) with a ``h×w`` heat map blended over it → ``H×W×3`` uint8."""
    rgb = _rgb(image, normalization)
    heat = F.interpolate(cam.detach().float().cpu()[None, None], size=image.shape[-2:], mode="bilinear",
                         align_corners=False)[0, 0].clamp(0, 1).numpy()
    colour = matplotlib.colormaps["jet"](heat)[..., :3]
    return ((1 - alpha) * rgb + alpha * colour).clip(0, 1).__mul__(255).astype(np.uint8)


def cam_grid(images: torch.Tensor, cams: list[torch.Tensor], pad: int = 2,
             normalization: Normalization | None = None) -> np.ndarray:
    """One row per image: the image, then its LDCAM overlay at each level (coarse → fine)."""
    rows = []
    for i, image in enumerate(images):
        plain = (_rgb(image, normalization) * 255).astype(np.uint8)
        tiles = [plain] + [overlay(image, cam[i], normalization=normalization) for cam in cams]
        tiles = [np.pad(t, ((pad, pad), (pad, pad), (0, 0)), constant_values=255) for t in tiles]
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


class LDCAMLogger(L.Callback):
    """Logs LDCAM heat maps every validation epoch and, with stimuli maps, their agreement.

    Args:
        num_images: how many images of the first validation batch to show.
        every_n_epochs: log the grid every this many epochs.
    """

    def __init__(self, num_images: int = 8, every_n_epochs: int = 1) -> None:
        self.num_images = num_images
        self.every_n_epochs = every_n_epochs
        self._agreement: dict[str, list[torch.Tensor]] = {}

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._agreement = {}

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                                batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if not isinstance(outputs, dict) or not outputs.get("cams"):
            return
        if "stimuli" in batch:
            for l, cam in enumerate(outputs["cams"]):
                for name, value in cam_stimuli_agreement(cam, batch["stimuli"]).items():
                    self._agreement.setdefault(f"val/cam_{name}_l{l + 1}", []).append(value)
        if (batch_idx == 0 and dataloader_idx == 0 and not trainer.sanity_checking and trainer.is_global_zero
                and trainer.current_epoch % self.every_n_epochs == 0):
            n = self.num_images
            self._log_grid(trainer, batch["image"][:n], [cam[:n] for cam in outputs["cams"]])

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for key, values in self._agreement.items():
            values = torch.stack(values)
            values = values[~values.isnan()]
            if len(values):
                pl_module.log(key, values.mean(), sync_dist=True)
        self._agreement = {}

    def _log_grid(self, trainer: L.Trainer, images: torch.Tensor, cams: list[torch.Tensor]) -> None:
        grid = cam_grid(images, cams, normalization=input_normalization(trainer))
        caption = "rows: validation images; columns: image, LDCAM at levels " + \
                  ", ".join(str(l + 1) for l in range(len(cams))) + " (coarse → fine)"
        publish(trainer, "val/ldcam", grid, caption)
