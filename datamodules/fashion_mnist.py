"""Fashion-MNIST: real data a CPU can train on, for the pruning experiments (docs/pruning.md).

Two on-disk layouts are read, both through torchvision's ``FashionMNIST(download=False)``:

- torchvision's: ``<root>/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (or ``.gz``);
- the Debian package ``dataset-fashion-mnist``: the four ``*-ubyte.gz`` files in one folder
  (``/usr/share/datasets/fashion-mnist``, or ``<root>`` itself). They are decompressed once into
  ``<cache_dir>/FashionMNIST/raw/`` where torchvision finds them.

Batches are dicts like the VEA modules' (``{"image": B×1×S×S, "label", "index", "path"}``) so every
``EmotionTask`` trains on them, with a flat 10-class taxonomy or, for MDAN's hierarchy study
(docs/mdan.md, "Fashion-MNIST hierarchy study"), the two-level ``garments`` taxonomy: clothing,
footwear and bags over the ten classes, whose indices stay the release's. The validation set is a
seeded random part of the 60,000 training images; the 10,000 official test images are the test set.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from affectlab.datamodules.hierarchy import Taxonomy, flat
from affectlab.datamodules.splits import SplitLoaders
from affectlab.experiments.errors import InvalidValue, MissingPath

CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.2860, 0.3530  # pixel statistics of the training images

#: Two levels over the release's ten classes (label i is CLASSES[i]): what a garment is worn on or for.
GROUPS = ("clothing", "footwear", "bag")
GROUP_OF = {"t-shirt/top": "clothing", "trouser": "clothing", "pullover": "clothing", "dress": "clothing",
            "coat": "clothing", "shirt": "clothing", "sandal": "footwear", "sneaker": "footwear",
            "ankle boot": "footwear", "bag": "bag"}
TAXONOMIES = ("flat", "garments")


def garments() -> Taxonomy:
    """clothing {t-shirt/top, trouser, pullover, dress, coat, shirt}, footwear {sandal, sneaker,
    ankle boot}, bag {bag}; the fine level keeps the release's order, so labels need no remapping."""
    return Taxonomy("fashion_mnist_garments", (GROUPS, CLASSES), (tuple(GROUPS.index(GROUP_OF[c]) for c in CLASSES),),
                    ("group", "class"))


class FashionMNISTError(MissingPath):
    """Neither of the known Fashion-MNIST layouts was found."""


def _present(folder: Path, suffix: str = "") -> bool:
    return all((folder / f"{name}{suffix}").is_file() for name in FILES)


def _decompress(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if not (target / name).is_file():
            # A part file of its own: runs started together may decompress into one cache at once.
            with gzip.open(source / f"{name}.gz", "rb") as fin, \
                    tempfile.NamedTemporaryFile(dir=target, prefix=name, suffix=".part", delete=False) as fout:
                shutil.copyfileobj(fin, fout)
            os.replace(fout.name, target / name)


def locate(root: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The folder to hand torchvision as ``root`` (it reads ``<that>/FashionMNIST/raw``).

    Raises:
        FashionMNISTError: naming both layouts when neither is present.
    """
    root = Path(root).expanduser()
    if _present(root / "FashionMNIST" / "raw"):
        return root
    cache = Path(cache_dir).expanduser() if cache_dir else root
    _decompress(_compressed(root), cache / "FashionMNIST" / "raw")
    return cache


def _compressed(root: Path) -> Path:
    """The folder holding the four ``.gz`` files: torchvision's raw folder, ``root``, or Debian's."""
    raw = root / "FashionMNIST" / "raw"
    for source in (raw, root, DEBIAN_DIR):
        if _present(source, ".gz"):
            return source
    raise FashionMNISTError(
        f"Fashion-MNIST not found under --data.root {root}. Expected one of:\n"
        f"  - torchvision's layout: {raw}/{{{','.join(FILES)}}} (optionally .gz)\n"
        f"  - the Debian package dataset-fashion-mnist: {DEBIAN_DIR}/*-ubyte.gz "
        f"(`apt install dataset-fashion-mnist`), or those four .gz files directly in {root}")


def check_present(root: str | Path) -> None:
    """Raise ``FashionMNISTError`` unless ``locate`` will find the files (a few ``stat`` calls, no decompression)."""
    root = Path(root).expanduser()
    if not _present(root / "FashionMNIST" / "raw"):
        _compressed(root)


class _Images(Dataset):
    """``N×28×28`` uint8 images and labels → dict samples, resized to ``size`` and normalised."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor, split: str,
                 size: int) -> None:
        self.images, self.labels, self.indices, self.split, self.size = images, labels, indices, split, size

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        index = int(self.indices[i])
        image = self.images[index].float().div(255).unsqueeze(0)           # 1×28×28
        if self.size != image.shape[-1]:
            image = F.interpolate(image[None], size=(self.size, self.size), mode="bilinear", align_corners=False)[0]
        return {"image": (image - MEAN) / STD, "label": int(self.labels[index]), "index": index,
                "path": f"{self.split}/{index:05d}"}


class FashionMNIST(SplitLoaders, L.LightningDataModule):
    """Fashion-MNIST as a LightningDataModule with a flat 10-class taxonomy.

    Args:
        root: torchvision's root (holding ``FashionMNIST/raw``) or a folder of the Debian ``.gz``
            files; the Debian package's folder is tried when neither is there.
        batch_size: samples per batch (per device under DDP).
        num_workers: DataLoader workers.
        image_size: side of the images fed to the network (28 is native).
        val_size: training images held out for validation (seeded).
        train_size: use only this many of the remaining training images (seeded; ``None``: all).
        test_size: use only this many of the 10,000 test images (seeded; ``None``: all).
        seed: seed of the split; the same on every machine. The training order follows the
            training seed (``seed_everything``), not this one.
        cache_dir: where the Debian ``.gz`` files are decompressed (default: ``root``).
        taxonomy: ``flat`` (the ten classes) or ``garments`` (group → class, see ``garments``).
    """

    num_channels = 1
    #: the grey level's mean and std the images are standardised with (0–1), for whoever feeds the trained network
    input_normalization = ((MEAN,), (STD,))

    def __init__(self, root: str = "data", batch_size: int = 128, num_workers: int = 2, image_size: int = 28,
                 val_size: int = 5000, train_size: int | None = None, test_size: int | None = None, seed: int = 0,
                 cache_dir: str | None = None, taxonomy: str = "flat") -> None:
        super().__init__()
        if taxonomy not in TAXONOMIES:
            raise InvalidValue(f"taxonomy must be one of {TAXONOMIES}, got {taxonomy!r}")
        self.save_hyperparameters()
        self.taxonomy_name = taxonomy
        self.root, self.cache_dir = root, cache_dir
        self.batch_size, self.num_workers, self.image_size = batch_size, num_workers, image_size
        self.val_size, self.train_size, self.test_size, self.seed = val_size, train_size, test_size, seed
        self.datasets: dict[str, _Images] = {}

    @classmethod
    def check_arguments(cls, args: Mapping[str, Any]) -> None:
        """Refuse a root where neither layout (nor the Debian package) is found, before anything is built (CLI)."""
        check_present(args.get("root") or "data")

    @property
    def taxonomy(self) -> Taxonomy:
        return garments() if self.taxonomy_name == "garments" else flat("fashion_mnist", CLASSES)

    @property
    def taxonomy_spec(self) -> dict[str, Any]:
        return self.taxonomy.to_dict()

    def prepare_data(self) -> None:
        locate(self.root, self.cache_dir)  # decompresses once, on one process

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

        folder = str(locate(self.root, self.cache_dir))
        train = TorchvisionFashionMNIST(folder, train=True, download=False)
        test = TorchvisionFashionMNIST(folder, train=False, download=False)
        order = torch.randperm(len(train.targets), generator=torch.Generator().manual_seed(self.seed))
        val, rest = order[: self.val_size], order[self.val_size:]
        if self.train_size is not None:
            rest = rest[: self.train_size]
        test_order = torch.arange(len(test.targets))
        if self.test_size is not None:
            test_order = torch.randperm(len(test_order), generator=torch.Generator().manual_seed(self.seed + 1))
            test_order = test_order[: self.test_size].sort().values
        self.datasets = {
            "train": _Images(train.data, train.targets, rest, "train", self.image_size),
            "val": _Images(train.data, train.targets, val, "train", self.image_size),
            "test": _Images(test.data, test.targets, test_order, "test", self.image_size),
        }

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        self.setup()
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=train,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
