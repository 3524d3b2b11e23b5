"""CelebA aligned faces with binary attributes and XDoG line drawings, for AD-VAE (docs/advae.md).

The official layout under ``root`` (docs/datasets.md)::

    img_align_celeba/000001.jpg ...
    list_attr_celeba.txt       line 1: image count; line 2: the 40 attribute names;
                               then ``000001.jpg  v1 ... v40`` with values 1 / -1
    list_eval_partition.txt    ``000001.jpg 0|1|2`` (train / val / test)

Batches are ``{"image": B×3×S×S in [0, 1], "attributes": B×K in {0, 1}, "drawing": B×1×S×S,
"index": B, "path": [B], "flipped": B}``; the drawing is made on the batch's device after transfer
(``datamodules/sketch.py``), optionally cached.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, default_collate
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from affectlab.datamodules.face_attributes import DEFAULT_ATTRIBUTES
from affectlab.datamodules.images import SkipReport, load_rgb
from affectlab.datamodules.sketch import DrawingCache, XDoG
from affectlab.datamodules.splits import SplitLoaders
from affectlab.datamodules.vea.layouts import LayoutError
from affectlab.experiments.errors import UserError

log = logging.getLogger(__name__)

IMAGES, ATTR_FILE, PARTITION_FILE = "img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt"
SPLIT_CODES = {"0": "train", "1": "val", "2": "test"}


def check_release(root: Path) -> None:
    """Raise ``LayoutError`` unless ``root`` holds the images folder and both annotation files."""
    for rel in (IMAGES, ATTR_FILE, PARTITION_FILE):
        if not (root / rel).exists():
            raise LayoutError(
                f"CelebA: {root} does not look like the CelebA release; first missing path: "
                f"{root / rel}.\nExpected under --data.root: {IMAGES}/NNNNNN.jpg, {ATTR_FILE}, "
                f"{PARTITION_FILE} (the official aligned-and-cropped release)")


class CelebAFormatError(UserError, ValueError):
    """A CelebA annotation file that does not follow the official format (names file and line)."""


def read_attributes(path: Path) -> tuple[list[str], dict[str, list[int]]]:
    """Parse ``list_attr_celeba.txt`` → (names, {file: [±1, ...]}), failing on the first bad line."""
    lines = path.read_text().splitlines()

    def fail(line: int, why: str) -> CelebAFormatError:
        return CelebAFormatError(f"{path}, line {line}: {why} (expected the official CelebA format: line 1 the "
                                 f"image count, line 2 the attribute names, then 'file v1 ... vN' with 1/-1)")

    if len(lines) < 2:
        raise fail(len(lines) + 1, "the file ends before the attribute names")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise fail(1, f"the image count is not an integer: {lines[0].strip()[:40]!r}") from None
    names = lines[1].split()
    if not names:
        raise fail(2, "no attribute names")
    table: dict[str, list[int]] = {}
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1:
            raise fail(number, f"{len(fields) - 1} values for {len(names)} attributes")
        try:
            values = [int(v) for v in fields[1:]]
        except ValueError:
            raise fail(number, f"a value is not an integer: {line.strip()[:60]!r}") from None
        if any(v not in (1, -1) for v in values):
            raise fail(number, "attribute values must be 1 or -1")
        table[fields[0]] = values
    if len(table) != count:
        log.warning("%s announces %d images but lists %d", path, count, len(table))
    return names, table


def read_partition(path: Path) -> dict[str, str]:
    """Parse ``list_eval_partition.txt`` → {file: train|val|test}."""
    split: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in SPLIT_CODES:
            raise CelebAFormatError(f"{path}, line {number}: expected 'file 0|1|2', got {line.strip()[:60]!r}")
        split[fields[0]] = SPLIT_CODES[fields[1]]
    return split


class CelebAFaces(Dataset):
    """Listed CelebA images with their attribute vectors; an undecodable file yields ``skipped``."""

    def __init__(self, root: Path, files: list[str], attributes: torch.Tensor, image_size: int,
                 center_crop: int, hflip: bool) -> None:
        self.root, self.files, self.attributes = root, files, attributes
        self.image_size, self.center_crop, self.hflip = image_size, center_crop, hflip

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rel = f"{IMAGES}/{self.files[index]}"
        image = load_rgb(self.root / rel)
        if image is None:
            return {"skipped": rel}
        # Center crop (178 px on the 178×218 release, clipped to the short side), then resize.
        side = min(self.center_crop, *image.size)
        tensor = v2.functional.to_image(image)
        tensor = TF.center_crop(tensor, [side, side])
        tensor = TF.resize(tensor, [self.image_size, self.image_size], antialias=True)
        tensor = TF.to_dtype(tensor, torch.float32, scale=True)
        flipped = bool(self.hflip and torch.rand(()) < 0.5)
        if flipped:
            tensor = tensor.flip(-1)
        return {"image": tensor.as_subclass(torch.Tensor), "attributes": self.attributes[index], "index": index,
                "path": rel, "flipped": flipped}


def collate_faces(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate decodable samples; paths of the others travel in ``batch["skipped"]``."""
    good = [item for item in items if "skipped" not in item]
    skipped = [item["skipped"] for item in items if "skipped" in item]
    batch = default_collate(good) if good else {"image": torch.empty(0), "attributes": torch.empty(0),
                                                  "index": torch.empty(0, dtype=torch.long), "path": [],
                                                  "flipped": torch.empty(0, dtype=torch.bool)}
    batch["skipped"] = skipped
    return batch


class CelebA(SplitLoaders, L.LightningDataModule):
    """CelebA faces, a chosen attribute subset and their XDoG line drawings (docs/advae.md).

    Args:
        root: the folder holding ``img_align_celeba/`` and the two annotation files.
        attributes: the attributes the model is conditioned on (linked to ``model.attributes``).
        image_size: side of the square fed to the networks (64; 128 as an option).
        center_crop: side of the center crop taken before resizing (clipped to the image).
        hflip: mirror training images at random.
        xdog: XDoG parameters (``datamodules.sketch.XDoG``).
        drawings: add ``batch["drawing"]`` (needed by stage 2 and the media grids).
        cache_drawings: keep drawings by path instead of recomputing them each epoch.
        batch_size: samples per batch (per device under DDP).
        num_workers: DataLoader workers.
        pin_memory: pin host memory (on a GPU).
        max_samples: use only the first N images of each split (quick runs); ``None`` for all.
    """

    def __init__(self, root: str = "data/celeba", attributes: list[str] | None = None, image_size: int = 64,
                 center_crop: int = 178, hflip: bool = True, xdog: dict[str, float] | None = None,
                 drawings: bool = True, cache_drawings: bool = False, batch_size: int = 64, num_workers: int = 4,
                 pin_memory: bool = True, max_samples: int | None = None) -> None:
        super().__init__()
        # The attributes are the model's hparams (linked there); stored here too they would clash
        # when Lightning merges the two for the logger (the CLI stores the config's null).
        self.save_hyperparameters(ignore=["attributes"])
        attributes = list(attributes or DEFAULT_ATTRIBUTES)
        self.root = Path(root).expanduser()
        self.attributes = attributes
        self.image_size = image_size
        self.center_crop, self.hflip = center_crop, hflip
        self.xdog = XDoG(**(xdog or {}))
        self.drawings, self.cache = drawings, (DrawingCache() if cache_drawings else None)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self.max_samples = max_samples
        self.skip_report = SkipReport()
        self.splits: dict[str, tuple[list[str], torch.Tensor]] | None = None

    # -- the release on disk ---------------------------------------------------------------------------
    @classmethod
    def check_arguments(cls, args: Mapping[str, Any]) -> None:
        """Refuse a root that is not the CelebA release (three ``stat`` calls), before anything is built (CLI)."""
        check_release(Path(str(args.get("root") or "data/celeba")).expanduser())

    def _check_layout(self) -> None:
        check_release(self.root)

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        self._check_layout()
        names, table = read_attributes(self.root / ATTR_FILE)
        unknown = [a for a in self.attributes if a not in names]
        if unknown:
            raise CelebAFormatError(f"{self.root / ATTR_FILE}: no attribute named {', '.join(unknown)} "
                                    f"(the file has: {', '.join(names)})")
        columns = [names.index(a) for a in self.attributes]
        partition = read_partition(self.root / PARTITION_FILE)
        self.splits = {}
        for split in ("train", "val", "test"):
            files = sorted(f for f, s in partition.items() if s == split)
            missing = [f for f in files if f not in table]
            if missing:
                raise CelebAFormatError(f"{self.root / ATTR_FILE}: no attributes for {missing[0]} "
                                        f"(listed in {PARTITION_FILE}; {len(missing)} such files)")
            files = files[: self.max_samples] if self.max_samples else files
            values = torch.tensor([[table[f][c] for c in columns] for f in files], dtype=torch.float32)
            self.splits[split] = (files, (values.reshape(len(files), len(columns)) > 0).float())
        if not self.splits["train"][0] and stage in (None, "fit"):
            raise LayoutError(f"CelebA: {self.root / PARTITION_FILE} lists no training image (code 0)")
        log.info("CelebA at %s: %s", self.root, ", ".join(f"{k}={len(v[0])}" for k, v in self.splits.items()))

    def attribute_rates(self, split: str = "train") -> torch.Tensor:
        """Fraction of images with each attribute on (``K``)."""
        assert self.splits is not None, "call setup() first"
        return self.splits[split][1].mean(0)

    # -- loaders -------------------------------------------------------------------------------------
    def dataset(self, split: str, train: bool = False) -> CelebAFaces:
        assert self.splits is not None, "call setup() first"
        files, values = self.splits[split]
        return CelebAFaces(self.root, files, values, self.image_size, self.center_crop, self.hflip and train)

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        return DataLoader(self.dataset(split, train), batch_size=self.batch_size, shuffle=train,
                          num_workers=self.num_workers, pin_memory=self.pin_memory, collate_fn=collate_faces,
                          drop_last=train and len(self.splits[split][0]) > self.batch_size)

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """Count skipped files and draw the XDoG line drawings where the batch now is (CPU or GPU)."""
        self.skip_report.add("batch", batch.pop("skipped", []))
        if self.drawings and len(batch["image"]):
            if self.cache is not None:
                batch["drawing"] = self.cache(self.xdog, batch["image"], list(batch["path"]), batch["flipped"])
            else:
                batch["drawing"] = self.xdog(batch["image"])
        return batch

    def teardown(self, stage: str) -> None:
        if self.skip_report.total():
            log.warning("CelebA: %s", self.skip_report.summary())
