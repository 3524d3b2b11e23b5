"""The shared VEA DataModule: one loading mechanism for every visual-emotion benchmark.

A benchmark subclass only declares data — its taxonomy and the layouts its release may take
(``datamodules/vea/layouts.py``). This base finds the layout under ``root``, builds the splits,
decodes images robustly (``datamodules/images.py``), applies the customary transforms and serves
batches ``{"image": B×3×S×S uint8, "label": B (leaf index), "index": B, "path": [B]}``. The images
are standardised (``input_normalization``) on the device, by the model's batch-transfer hook
(``modules/emotion.py``), so workers ship a quarter of the bytes and do no float work.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler, WeightedRandomSampler, default_collate
from torchvision import tv_tensors
from torchvision.transforms import v2

from affectlab.datamodules.crops import IMAGENET_MEAN, IMAGENET_STD, DecodeCrop, eval_resize
from affectlab.datamodules.hierarchy import Taxonomy
from affectlab.datamodules.images import SkipReport, load_rgb
from affectlab.datamodules.splits import SplitLoaders
from affectlab.datamodules.vea import index_cache
from affectlab.datamodules.vea.layouts import (
    SPLITS,
    ClassFolders,
    Layout,
    LayoutError,
    Sample,
    Splits,
    check_order,
)
from affectlab.experiments.errors import InvalidValue

log = logging.getLogger(__name__)


def train_transform(size: int) -> v2.Compose:
    """RandomResizedCrop + horizontal flip (docs/mdan.md) of a decoded image, uint8 out (the reference path)."""
    return v2.Compose([v2.ToImage(), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()])


def eval_transform(size: int, resize: int | None = None) -> v2.Compose:
    """Resize the shorter side to ``resize`` then center crop ``size``, uint8 out (the reference path).

    ``resize=None`` is ``size / 0.875``, the ImageNet evaluation convention (this project's default);
    the VEA lineage (WSCNet's public code) evaluates with Resize(448) + CenterCrop(448), i.e.
    ``resize == size`` (docs/mdan.md, "Training settings").
    """
    return v2.Compose([v2.ToImage(), v2.Resize(resize or eval_resize(size), antialias=True), v2.CenterCrop(size)])


class ImageListDataset(Dataset):
    """Images listed as ``(relative path, label)``; an undecodable file yields ``{"skipped": path}``.

    Images come out ``3×S×S`` uint8. With ``crop`` (``datamodules/crops.py``), a file is decoded
    at the scale the crop needs and cropped in one step (the fast path); otherwise it is decoded
    in full and ``transform`` crops it (the reference path, also used for samples with stimuli).

    With ``stimuli`` (a function from a sample's relative path to its stimuli-map file), each
    sample also carries ``"stimuli"``: the 1×S×S map in [0, 1], cropped and flipped exactly like
    the image (torchvision v2 transforms a ``Mask`` with the same parameters), or all ``-1`` when the
    map is missing.
    """

    def __init__(self, root: Path, samples: Sequence[Sample], transform: Any,
                 stimuli: Callable[[str], Path | None] | None = None, crop: DecodeCrop | None = None) -> None:
        self.root = Path(root)
        self.samples = list(samples)
        self.transform = transform
        self.stimuli = stimuli
        self.crop = crop

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        """``key``: an index, or ``(index, draw seed)`` from ``EpochSampler``."""
        index, draw_seed = key if isinstance(key, tuple) else (key, None)
        rel, label = self.samples[index]
        if draw_seed is None:
            return self._item(rel, label, index)
        # The augmentation draws come from the sampler's seed alone: identical after a resume, on any worker.
        # Only the CPU generator draws here; torch.manual_seed would also queue a seed for every
        # accelerator backend, which costs a stack trace per call (a fifth of a 448-px sample).
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(draw_seed)
            return self._item(rel, label, index)

    def _item(self, rel: str, label: int, index: int) -> dict[str, Any]:
        if self.crop is not None and self.stimuli is None:
            image = self.crop(self.root / rel)
            if image is None:
                return {"skipped": rel}
            return {"image": image, "label": label, "index": index, "path": rel}
        decoded = load_rgb(self.root / rel)
        if decoded is None:
            return {"skipped": rel}
        return self._transform(decoded, rel, label, index)

    def _transform(self, image: Image.Image, rel: str, label: int, index: int) -> dict[str, Any]:
        if self.stimuli is None:
            return {"image": self.transform(image), "label": label, "index": index, "path": rel}
        path = self.stimuli(rel)
        stimuli = load_rgb(path) if path is not None else None
        found = stimuli is not None
        if not found:
            stimuli = Image.new("L", image.size)
        elif stimuli.size != image.size:
            stimuli = stimuli.resize(image.size, Image.BILINEAR)
        mask = tv_tensors.Mask(torch.from_numpy(np.asarray(stimuli.convert("L"), dtype=np.uint8).copy())[None])
        image, mask = self.transform(image, mask)                               # 3×S×S uint8, 1×S×S
        mask = mask.as_subclass(torch.Tensor).float() / 255.0 if found else torch.full(mask.shape, -1.0)
        return {"image": image, "label": label, "index": index, "path": rel, "stimuli": mask}


def training_seed() -> int:
    """The training seed: the one ``seed_everything`` set (``--seed_everything``), 0 when none was.

    Lightning publishes it as ``PL_GLOBAL_SEED``, which its own distributed samplers read for their
    shuffle; the single-process sampler below reads the same value, so one seed drives training
    however it is launched, while ``data.seed`` stays the split protocol's.
    """
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


class EpochSampler(Sampler):
    """Shuffle (or class-balanced draw) seeded by ``(seed, epoch)``, yielding ``(index, draw seed)``.

    ``seed`` is the training seed (``training_seed()``). Lightning calls ``set_epoch`` before each
    epoch. The order and each draw's augmentation seed depend on nothing but the training seed, the
    epoch and the draw's position, so a run resumed from a checkpoint sees exactly the batches and
    pixels of the uninterrupted run, and another training seed sees other batches and other crops.
    """

    def __init__(self, num_samples: int, seed: int = 0, weights: torch.Tensor | None = None) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.weights = weights
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        # One SeedSequence per (seed, epoch): its first word seeds the order, the rest the draws.
        sequence = np.random.SeedSequence([self.seed, self.epoch])
        order_seed, *_ = sequence.generate_state(1, np.uint64)
        generator = torch.Generator().manual_seed(int(order_seed) & 0x7FFF_FFFF_FFFF_FFFF)
        if self.weights is None:
            order = torch.randperm(self.num_samples, generator=generator)
        else:
            order = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator)
        # A seed per draw (not per image): an image drawn twice by the balanced sampler gets two crops.
        draws = sequence.spawn(1)[0].generate_state(self.num_samples, np.uint64) & 0x7FFF_FFFF_FFFF_FFFF
        return iter([(int(i), int(d)) for i, d in zip(order, draws, strict=True)])


def collate_skipping(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate the decodable samples; the paths of the others travel in ``batch["skipped"]``."""
    good = [item for item in items if "skipped" not in item]
    skipped = [item["skipped"] for item in items if "skipped" in item]
    if good:
        batch = default_collate(good)
    else:  # a whole batch of bad files: an empty batch the modules skip
        batch = {"image": torch.empty(0, dtype=torch.uint8), "label": torch.empty(0, dtype=torch.long),
                 "index": torch.empty(0, dtype=torch.long), "path": []}
    batch["skipped"] = skipped
    return batch


#: Every supported backbone (ResNet, VGG) divides its input by 32: a smaller image leaves its last
#: stage less than one pixel (VGG fails, ResNet trains on a single pooled value).
MIN_IMAGE_SIZE = 32


def check_sizes(owner: str, batch_size: int, num_workers: int, image_size: int) -> None:
    """Refuse sizes no run can use, when the DataModule is built (before any data is read)."""
    for name, value, least in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidValue(f"{owner}: --data.{name} must be an integer >= {least}, got {value!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise InvalidValue(f"{owner}: --data.image_size must be an integer >= {MIN_IMAGE_SIZE} (the backbones divide "
                           f"the image by 32; a smaller one leaves the last stage less than one pixel), got {image_size!r}")


class VEADataModule(SplitLoaders, L.LightningDataModule):
    """Base of every visual-emotion benchmark.

    Args:
        root: the folder where the release was unpacked.
        batch_size: samples per batch (per device under DDP).
        num_workers: DataLoader workers.
        image_size: side of the square crop fed to the network.
        eval_resize: the shorter side validation and test images are resized to before the
            center crop (``None``: ``image_size / 0.875``, the ImageNet convention; 448 with
            ``image_size`` 448 is the VEA lineage's Resize(448) + CenterCrop(448)).
        seed: seed of the split protocol only (folds, carved validation); the same on every
            machine. The order of training samples and their augmentation follow the training seed
            (``--seed_everything``, see ``training_seed``), so repeats over training seeds vary
            training on a fixed split.
        pin_memory: pin host memory (useful on GPU).
        persistent_workers: keep workers alive between epochs.
        balanced_sampling: sample training images with probability inversely proportional to their
            class frequency (FI and Twitter II are imbalanced).
        class_weighted_loss: expose ``class_weights`` (inverse train frequency, mean 1), which the
            CLI links to the model's weighted cross-entropy; the other remedy for imbalance.
        cache_index: keep the sample index under ``runs/.index_cache`` (see ``index_cache``).
        fast_decode: decode each JPEG at the reduced scale its crop allows and crop in one step
            (``datamodules/crops.py``); off: full decode, then torchvision's transforms (the reference
            path). The two agree within the tolerance of docs/datasets.md, "Decoding".
        label_order: the class names in the order of a split file's integer labels, when they
            follow another order than the release's (``index_order``) or the release has none;
            integer labels are otherwise read in the release's order, or refused.
    """

    taxonomy_name: ClassVar[str] = "mikels"
    layouts: ClassVar[tuple[Layout, ...]] = ()
    benchmark: ClassVar[str] = "vea"
    #: image channels the network is built for (linked to the model's ``in_channels``)
    num_channels: ClassVar[int] = 3
    #: the release's own order of class names for integer labels (``None``: the release uses names)
    index_order: ClassVar[tuple[str, ...] | None] = None
    #: per-channel mean and std the images are standardised with (0–1 RGB), for whoever feeds the trained network
    input_normalization: ClassVar[tuple[tuple[float, ...], tuple[float, ...]]] = (IMAGENET_MEAN, IMAGENET_STD)

    def __init__(
        self,
        root: str = "data/sample_fi",
        batch_size: int = 32,
        num_workers: int = 4,
        image_size: int = 224,
        eval_resize: int | None = None,
        seed: int = 0,
        pin_memory: bool = True,
        persistent_workers: bool = False,
        balanced_sampling: bool = False,
        class_weighted_loss: bool = False,
        cache_index: bool = True,
        fast_decode: bool = True,
        label_order: list[str] | None = None,
    ) -> None:
        super().__init__()
        check_sizes(type(self).__name__, batch_size=batch_size, num_workers=num_workers, image_size=image_size)
        self.save_hyperparameters()
        self.label_order = check_order(label_order, self.taxonomy) if label_order else self.index_order
        self.root = Path(root).expanduser()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        if eval_resize is not None and eval_resize < image_size:
            raise InvalidValue(f"eval_resize {eval_resize} is smaller than the crop image_size {image_size}")
        self.eval_resize = eval_resize
        self.seed = seed
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self.persistent_workers = persistent_workers and num_workers > 0
        self.balanced_sampling = balanced_sampling
        self.class_weighted_loss = class_weighted_loss
        self.cache_index = cache_index
        self.fast_decode = fast_decode
        self.splits: Splits | None = None
        #: per split, the files a list names but the disk lacks (dropped from the splits, counted)
        self.missing: dict[str, list[Sample]] = {}
        self.skip_report = SkipReport()

    # -- what the model needs to know (linked by the CLI) --------------------------------------------
    @property
    def taxonomy(self) -> Taxonomy:
        return Taxonomy.from_spec(self.taxonomy_name)

    @property
    def taxonomy_spec(self) -> dict[str, Any]:
        return self.taxonomy.to_dict()

    @property
    def class_weights(self) -> list[float] | None:
        """Inverse training-class frequency normalised to mean 1 (``None`` unless ``class_weighted_loss``).

        Read by the CLI link right after the DataModule is built, so it reads the (cached) index.
        A class absent from train gets weight 0: it contributes no loss term anyway.
        """
        if not self.class_weighted_loss:
            return None
        self.setup("fit")
        counts = self.class_counts("train").float()
        weights = torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts))
        weights = weights * (counts > 0).sum() / weights.sum()
        return [float(w) for w in weights]

    def protocol(self) -> dict[str, Any]:
        """The protocol choices a layout reads besides the seed (``fold``, ``agree``); part of the cache key."""
        return {}

    def notes(self) -> list[str]:
        """What the reader changed in the release, one line each, for ``affectlab-data stats``."""
        return []

    def stimuli_source(self) -> Callable[[str], Path | None] | None:
        """Where a sample's stimuli map lives, when the benchmark has them and the caller asked (EmotionROI)."""
        return None

    # -- finding and reading the release -------------------------------------------------------------
    @classmethod
    def check_arguments(cls, args: Mapping[str, Any]) -> None:
        """Refuse, before anything is built, sizes no run can use and a root holding none of the layouts.

        The CLI calls it on the parsed ``data.init_args`` (``experiments/cli.py``), so a wrong
        ``--data.root`` fails in the time the parser takes. Cheap on any release: a few ``stat``
        calls and, for class-folder layouts, one listing of their top folder; never a walk.
        """
        if all(k in args for k in ("batch_size", "num_workers", "image_size")):
            check_sizes(cls.__name__, args["batch_size"], args["num_workers"], args["image_size"])
        if args.get("root") is not None:
            cls.locate_layout(Path(str(args["root"])).expanduser())

    def find_layout(self) -> Layout:
        """The first declared layout present under ``root``; otherwise one error naming them all."""
        return self.locate_layout(self.root)

    @classmethod
    def locate_layout(cls, root: Path) -> Layout:
        """The first of ``layouts`` present under ``root``; otherwise one ``LayoutError`` naming them all."""
        if not root.is_dir():
            raise LayoutError(cls._layout_message(root, f"the root folder {root} does not exist"))
        taxonomy = Taxonomy.from_spec(cls.taxonomy_name)
        for layout in cls.layouts:
            if layout.missing(root) is None and (
                not isinstance(layout, ClassFolders) or layout.matches(root, taxonomy)
            ):
                return layout
        first = cls.layouts[0].missing(root) or cls.layouts[0].required(root)[0]
        raise LayoutError(cls._layout_message(root, f"first missing path: {first}"))

    @classmethod
    def _layout_message(cls, root: Path, detail: str) -> str:
        expected = "\n".join(f"  - {layout.description}" for layout in cls.layouts)
        taxonomy = Taxonomy.from_spec(cls.taxonomy_name)
        return (f"{cls.__name__}: {root} does not look like a {cls.benchmark} release; {detail}.\n"
                f"Expected one of these layouts under --data.root:\n{expected}\n"
                f"Classes ({taxonomy.name}): {', '.join(taxonomy.leaves)}")

    def read_splits(self) -> Splits:
        """The splits of the release, from the index cache when the release is unchanged.

        Files a list names but the disk lacks (WEBEmo's dead links, files lost in a copy) are
        dropped here and counted in ``self.missing``, so an epoch never stalls on them.
        """
        layout = self.find_layout()
        protocol = {**self.protocol(), "index_order": self.label_order}
        watched = layout.watched(self.root)
        key = index_cache.cache_key(type(self).__name__, self.root, layout, {"seed": self.seed, **protocol})
        cached = index_cache.load(key, watched) if self.cache_index else None
        if cached is not None:
            splits, self.missing = cached
            return splits
        splits = layout.read(self.root, self.taxonomy, self.seed, **protocol)
        self.missing = {}
        if layout.lists_files:
            present, folders = index_cache.existing(self.root, [s for samples in splits.values() for s in samples])
            watched = watched + [f for f in folders if f not in watched]
            for split, samples in splits.items():
                kept = [s for s in samples if s[0] in present]
                if len(kept) < len(samples):
                    self.missing[split] = [s for s in samples if s[0] not in present]
                    splits[split] = kept
        if self.cache_index:
            index_cache.save(key, watched, splits, self.missing)
        return splits

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            splits = self.read_splits()
            for split in SPLITS:
                splits.setdefault(split, [])
            if not splits["train"] and stage in (None, "fit"):
                raise LayoutError(self._layout_message(self.root, "the layout was found but lists no training image"))
            self.splits = splits
            counts = ", ".join(f"{k}={len(v)}" for k, v in splits.items())
            log.info("%s at %s: %s", type(self).__name__, self.root, counts)
            for split, lost in self.missing.items():  # fresh or cached index alike
                log.warning("%s: %d files listed in %s are missing, left out (e.g. %s)", type(self).__name__,
                            len(lost), split, ", ".join(rel for rel, _ in lost[:3]))

    def class_counts(self, split: str = "train") -> torch.Tensor:
        """Images per leaf class in ``split`` (for class weights and the stats table)."""
        assert self.splits is not None, "call setup() first"
        labels = torch.tensor([label for _, label in self.splits[split]], dtype=torch.long)
        return torch.bincount(labels, minlength=len(self.taxonomy.leaves))

    # -- loaders -----------------------------------------------------------------------------------
    def dataset(self, split: str, train: bool = False) -> ImageListDataset:
        assert self.splits is not None, "call setup() first"
        transform = train_transform(self.image_size) if train else eval_transform(self.image_size, self.eval_resize)
        crop = DecodeCrop(self.image_size, train, resize=self.eval_resize) if self.fast_decode else None
        return ImageListDataset(self.root, self.splits[split], transform, self.stimuli_source(), crop)

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        dataset = self.dataset(split, train)
        sampler = None
        weights = None
        if train and self.balanced_sampling:
            counts = self.class_counts(split).clamp(min=1).float()
            weights = (1.0 / counts)[torch.tensor([label for _, label in dataset.samples], dtype=torch.long)]
        distributed = self.trainer is not None and self.trainer.world_size > 1
        if train and not distributed:
            sampler = EpochSampler(len(dataset), training_seed(), weights)
        elif train and weights is not None:  # Lightning shards this sampler across ranks
            sampler = WeightedRandomSampler(weights, num_samples=len(dataset), replacement=True)
        return DataLoader(
            dataset, batch_size=self.batch_size, shuffle=train and sampler is None, sampler=sampler,
            num_workers=self.num_workers, pin_memory=self.pin_memory, collate_fn=collate_skipping,
            persistent_workers=self.persistent_workers, drop_last=False,
        )

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Count the samples the workers could not decode, per stage, before the batch moves."""
        skipped = batch.pop("skipped", [])
        if skipped:
            stage = self.trainer.state.stage.value if self.trainer is not None and self.trainer.state.stage else "data"
            self.skip_report.add(stage, skipped)
        return batch

    def teardown(self, stage: str) -> None:
        if self.skip_report.counts:
            log.warning(self.skip_report.summary())
