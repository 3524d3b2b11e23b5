"""The images of feature map inversion (docs/inversion.md): content and style images, and photo patches.

``InversionImages``: the content and optional style image an inversion starts from.
``PhotoPatches``: random crops of scikit-image's sample photos and textures, labelled by the photo
they come from — real colour images a small VGG learns texture filters from on a CPU, so an
inversion can compare a trained trunk with the same architecture at random weights.

An inversion has no dataset: it optimises images towards codes of one content image (and, for
style transfer, one style image). This DataModule reads them — a path, or the name of one of
scikit-image's samples (``astronaut``, ``coffee``, ``chelsea``, ``rocket``, … ``SAMPLE_PHOTOS``) — resizes them to
``image_size`` (shorter side, then a centre crop) and serves the same 0–1 RGB pair once per
iteration, so the trainer's epoch is the optimisation: ``iterations`` steps, at most, and early
stopping ends it sooner.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from skimage import data as skdata
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import functional as TF

from affectlab.datamodules.hierarchy import Taxonomy, flat
from affectlab.datamodules.images import load_rgb
from affectlab.datamodules.splits import SplitLoaders
from affectlab.datamodules.vea.base import IMAGENET_MEAN, IMAGENET_STD
from affectlab.experiments.errors import InvalidValue, MissingPath

#: scikit-image samples that ship with the package (no download): colour photos, grey textures and scenes.
PATCH_SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "retina", "hubble_deep_field", "immunohistochemistry",
                 "colorwheel", "brick", "grass", "gravel", "coins", "camera", "moon")
#: scikit-image samples usable by name instead of a path (grey ones are read as RGB).
SAMPLE_PHOTOS = PATCH_SOURCES


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

    @classmethod
    def check_arguments(cls, args: Mapping[str, Any]) -> None:
        """Refuse a content or style image that is neither a file nor a sample photo, before anything is built (CLI)."""
        root = Path(str(args["root"])) if args.get("root") else None
        for name in (args.get("content"), args.get("style")):
            if name:
                image_file(root, str(name))

    def load(self, name: str) -> torch.Tensor:
        """One image as ``3×S×S`` in 0–1 RGB: shorter side resized to S, then centre-cropped."""
        path = image_file(self.root, name)
        if path is None:
            image = TF.to_pil_image(sample_photo(name))
        else:
            image = load_rgb(path)
            if image is None:
                raise InvalidValue(f"image {path} could not be decoded")
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


def image_file(root: Path | None, name: str) -> Path | None:
    """The file ``name`` stands for (relative to ``root`` when given), ``None`` for a sample photo; else ``MissingPath``."""
    if name in SAMPLE_PHOTOS and not (root and (root / name).exists()):
        return None
    path = root / name if root and not Path(name).is_absolute() else Path(name)
    if not path.exists():
        raise MissingPath(f"image {path} does not exist; give a path (relative to --data.root) or one "
                          f"of the sample photos: {', '.join(SAMPLE_PHOTOS)}")
    return path


def sample_photo(name: str) -> torch.Tensor:
    """A scikit-image sample as ``3×H×W`` float 0–1 RGB (grey ones repeated over the channels, alpha dropped)."""
    loader = getattr(skdata, name, None)
    if loader is None:
        raise InvalidValue(f"scikit-image has no sample {name!r}")
    image = np.asarray(loader())
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1).float() / 255.0


class _Patches(Dataset):
    """``length`` crops, crop i drawn from its own seeded generator (the same crops on every run and worker)."""

    def __init__(self, photos: list[torch.Tensor], length: int, size: int, scale: tuple[float, float],
                 seed: int, augment: bool) -> None:
        self.photos, self.length, self.size, self.scale, self.seed, self.augment = photos, length, size, scale, seed, augment
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Any]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 7_919 + i)
        label = int(torch.randint(len(self.photos), (1,), generator=g))
        photo = self.photos[label]
        h, w = photo.shape[-2:]
        # crop side: a log-uniform fraction of the shorter side, then resized to `size`
        lo, hi = (math.log(s * min(h, w)) for s in self.scale)
        side = int(math.exp(lo + (hi - lo) * float(torch.rand(1, generator=g))))
        top = int(torch.randint(h - side + 1, (1,), generator=g))
        left = int(torch.randint(w - side + 1, (1,), generator=g))
        crop = TF.resize(photo[:, top:top + side, left:left + side], [self.size, self.size], antialias=True)
        if self.augment and bool(torch.rand(1, generator=g) < 0.5):
            crop = crop.flip(-1)
        mean, std = (torch.tensor(v).view(3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
        return {"image": (crop.clamp(0, 1) - mean) / std, "label": label, "index": i, "path": f"{i:06d}"}


class PhotoPatches(SplitLoaders, LightningDataModule):
    """Which photo is this crop from? Random crops of scikit-image's samples, one class per photo.

    A small classification task on real colour images that trains a VGG-style trunk in minutes on a
    CPU (``experiments/inversion/train_trunk.yaml``). Crops cover ``scale`` of the photo's shorter
    side (log-uniform), resized to ``image_size``; training crops are flipped at random and drawn
    afresh every epoch, validation and test crops are fixed. Batches are the classifiers' dicts
    (``{"image": B×3×S×S, "label", "index", "path"}``) standardised with ImageNet's statistics.

    Args:
        photos: scikit-image sample names (``PATCH_SOURCES``: colour photos and grey textures).
        image_size: S, the side of the crops.
        train_size, val_size, test_size: crops per split (training crops are redrawn each epoch).
        scale: smallest and largest crop side as a fraction of the photo's shorter side.
        batch_size, num_workers, seed: the loaders' settings and the crops' seed.
    """

    num_channels = 3
    input_normalization = (IMAGENET_MEAN, IMAGENET_STD)

    def __init__(self, photos: list[str] = PATCH_SOURCES, image_size: int = 64, train_size: int = 4096,
                 val_size: int = 1024, test_size: int = 1024, scale: tuple[float, float] = (0.1, 0.4),
                 batch_size: int = 64, num_workers: int = 0, seed: int = 0) -> None:
        super().__init__()
        if len(photos) < 2:
            raise InvalidValue(f"PhotoPatches needs at least two photos to tell apart, got {list(photos)}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise InvalidValue(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        self.save_hyperparameters()
        self.photos, self.image_size = list(photos), image_size
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.scale, self.batch_size, self.num_workers, self.seed = tuple(scale), batch_size, num_workers, seed
        self.datasets: dict[str, _Patches] = {}

    @property
    def taxonomy(self) -> Taxonomy:
        return flat("photo_patches", self.photos)

    @property
    def taxonomy_spec(self) -> dict[str, Any]:
        return self.taxonomy.to_dict()

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        photos = [sample_photo(name) for name in self.photos]
        self.datasets = {split: _Patches(photos, n, self.image_size, self.scale, self.seed + offset, split == "train")
                         for offset, (split, n) in enumerate(self.sizes.items())}

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        self.setup()
        if train and self.trainer is not None:                 # fresh training crops every epoch
            self.datasets[split].epoch = self.trainer.current_epoch
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=train,
                          num_workers=self.num_workers)
