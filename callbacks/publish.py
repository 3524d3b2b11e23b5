"""One way to publish a picture: a PNG in the run folder, and the same picture in W&B.

Every callback and module that draws goes through :func:`publish`, so pictures land under one
naming scheme (``<run>/media/<key>_eNNN.png``, the key's ``/`` as ``_``) and reach W&B under their
metric-style key (``val/ldcam``, ``val/confusion_matrix``). Images are shown with the input
normalisation the datamodule declares (:func:`display_rgb`), never an assumed one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import WandbLogger
from PIL import Image

from affectlab.datamodules.crops import IMAGENET_MEAN, IMAGENET_STD, unit_rgb

Normalization = tuple[Sequence[float], Sequence[float]]


def input_normalization(trainer: L.Trainer | None) -> Normalization:
    """The (mean, std) the datamodule standardises its images with; ImageNet's when it declares none."""
    datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
    return getattr(datamodule, "input_normalization", None) or (IMAGENET_MEAN, IMAGENET_STD)


def display_rgb(images: torch.Tensor, normalization: Normalization | None = None) -> torch.Tensor:
    """Batch images (uint8, or standardised with ``normalization``, ImageNet's by default) → ``…×3×H×W`` in [0, 1].

    Grey images (one channel) are repeated to RGB.
    """
    mean, std = normalization or (IMAGENET_MEAN, IMAGENET_STD)
    channels = images.shape[-3]
    if images.dtype != torch.uint8 and channels != len(mean):
        raise ValueError(f"images with {channels} channels cannot be shown with a normalisation of {len(mean)}")
    images = unit_rgb(images, mean, std)
    return images.expand(*images.shape[:-3], 3, *images.shape[-2:]) if images.shape[-3] == 1 else images


def media_path(trainer: L.Trainer, key: str) -> Path:
    """``<run>/media/<key>_eNNN.png`` for the current epoch."""
    return Path(trainer.default_root_dir) / "media" / f"{key.replace('/', '_')}_e{trainer.current_epoch:03d}.png"


def _save(picture: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(picture, "savefig"):  # a matplotlib figure
        import matplotlib.pyplot as plt

        picture.savefig(path, dpi=90)
        plt.close(picture)
    elif isinstance(picture, Image.Image):
        picture.save(path)
    elif isinstance(picture, torch.Tensor):  # C×H×W in [0, 1]
        array = picture.detach().float().cpu().clamp(0, 1).mul(255).round().byte()
        Image.fromarray(array.permute(1, 2, 0).squeeze(-1).numpy()).save(path)
    elif isinstance(picture, np.ndarray):  # H×W×3 uint8
        Image.fromarray(picture).save(path)
    else:
        raise TypeError(f"cannot publish a {type(picture).__name__}: give a figure, a PIL image, a tensor, "
                        f"an array or the path of a PNG")


def publish(trainer: L.Trainer | None, key: str, picture: Any, caption: str = "",
            path: str | Path | None = None) -> Path | None:
    """Save ``picture`` in the run folder and log it to every W&B logger; returns the PNG's path.

    Args:
        trainer: the running trainer (``None``: nothing is written).
        key: the W&B key, ``stage/name``.
        picture: a matplotlib figure, a PIL image, a ``C×H×W`` tensor in [0, 1], an ``H×W×3`` uint8
            array, or the path of a PNG already written.
        caption: shown under the picture in W&B.
        path: where to save instead of :func:`media_path`.
    """
    if trainer is None or not trainer.is_global_zero:
        if hasattr(picture, "savefig"):
            import matplotlib.pyplot as plt

            plt.close(picture)
        return None
    if isinstance(picture, str | Path):
        path = Path(picture)
    else:
        path = Path(path) if path is not None else media_path(trainer, key)
        _save(picture, path)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step,
                             **({"caption": [caption]} if caption else {}))
    return path
