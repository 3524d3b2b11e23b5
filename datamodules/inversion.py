"""The images a feature map inversion starts from (docs/inversion.md): a content and an optional style image.

An inversion has no dataset: it optimises images towards codes of one content image (and, for
style transfer, one style image). This DataModule reads them — a path, or the name of one of
scikit-image's sample photos (``astronaut``, ``coffee``, ``chelsea``) — resizes them to
``image_size`` (shorter side, then a centre crop) and serves the same 0–1 RGB pair once per
iteration, so the trainer's epoch is the optimisation: ``iterations`` steps, at most, and early
stopping ends it sooner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from PIL import Image
from skimage import data as skdata
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import functional as TF

from affectlab.datamodules.images import load_rgb

#: scikit-image sample photos usable by name instead of a path.
SAMPLE_PHOTOS = {"astronaut": skdata.astronaut, "coffee": skdata.coffee, "chelsea": skdata.chelsea}


class _Repeat(Dataset):
    """The same item ``length`` times: one item per optimisation step."""

    def __init__(self, item: dict[str, torch.Tensor], length: int) -> None:
        self.item, self.length = item, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.item


class InversionImages(LightningDataModule):
    """Content (and style) image for ``modules.inversion``; batches are ``{"content": 1×3×S×S, "style": 1×3×S×S}``.

    Args:
        content: a path (relative to ``root`` when given) or a scikit-image sample name.
        style: the same for the style image; None when the experiment needs none.
        root: folder the relative paths are read from.
        image_size: S, linked to the model's ``image_size``.
        iterations: steps per run (the original stops at 1000 at the latest).
    """

    def __init__(self, content: str = "astronaut", style: str | None = None, root: str | None = None,
                 image_size: int = 224, iterations: int = 1000) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.content, self.style, self.root = content, style, Path(root) if root else None
        self.image_size, self.iterations = image_size, iterations
        self.images: dict[str, torch.Tensor] = {}

    def load(self, name: str) -> torch.Tensor:
        """One image as ``3×S×S`` in 0–1 RGB: shorter side resized to S, then centre-cropped."""
        if name in SAMPLE_PHOTOS and not (self.root and (self.root / name).exists()):
            image = Image.fromarray(SAMPLE_PHOTOS[name]())
        else:
            path = self.root / name if self.root and not Path(name).is_absolute() else Path(name)
            if not path.exists():
                raise FileNotFoundError(f"image {path} does not exist; give a path (relative to --data.root) or one "
                                        f"of the sample photos: {', '.join(SAMPLE_PHOTOS)}")
            image = load_rgb(path)
            if image is None:
                raise ValueError(f"image {path} could not be decoded")
        image = TF.center_crop(TF.resize(image, self.image_size, antialias=True), [self.image_size] * 2)
        return TF.to_tensor(image)

    def setup(self, stage: str | None = None) -> None:
        if not self.images:
            self.images["content"] = self.load(self.content)
            if self.style:
                self.images["style"] = self.load(self.style)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(_Repeat(self.images, self.iterations), batch_size=1, num_workers=0)

    @classmethod
    def write_sample(cls, root: str | Path) -> dict[str, Any]:
        """Write a small content and style PNG under ``root``; return the overrides that use them (16 px, 3 steps)."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        for name, photo in (("content.png", skdata.astronaut()), ("style.png", skdata.coffee())):
            Image.fromarray(photo).resize((48, 40)).save(root / name)       # not square: exercises the crop
        return {"root": str(root), "content": "content.png", "style": "style.png", "image_size": 16, "iterations": 3}
