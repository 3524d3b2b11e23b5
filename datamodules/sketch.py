"""Line drawings from photos (XDoG) and a predict DataModule over a folder of drawings.

docs/advae.md (decision): AD-VAE's stage 2 learns from simple line drawings made from the photos
with XDoG, the extended difference of Gaussians (Winnemöller et al. 2012), computed in torch on the
fly so it runs where the batch is (CPU or GPU) and is the same function at training and synthesis.

``XDoG`` is deterministic and batched; ``DrawingCache`` keeps the drawings of images seen before
(keyed by file path) so a CPU run pays for each drawing once. ``LineDrawings`` serves a folder of
drawings (or of photos, turned into drawings) and an optional style photo to ``predict``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from affectlab.datamodules.face_attributes import DEFAULT_ATTRIBUTES
from affectlab.datamodules.images import SkipReport, load_rgb
from affectlab.experiments.errors import InvalidValue, MissingPath

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class XDoG(nn.Module):
    """Extended difference of Gaussians: ``B×3×H×W`` photo in [0, 1] → ``B×1×H×W`` drawing in [0, 1].

    ``D = G_σ(I) − τ·G_{kσ}(I)`` on the luminance ``I``; the drawing is white (1) where ``D ≥ ε``
    and ``1 + tanh(φ·(D − ε))`` elsewhere, i.e. soft dark lines on the dark side of edges. With
    ``τ`` just under 1 flat regions of any brightness stay white: the drawing holds contours only,
    as the paper's simple line drawings do.

    Args:
        sigma: scale of the inner Gaussian in pixels of a 64-px image (scaled with the image side).
        k: ratio of the outer to the inner scale.
        tau: weight of the outer Gaussian (sensitivity to edges).
        epsilon: threshold on ``D``.
        phi: steepness of the soft threshold.
        reference_size: image side that ``sigma`` refers to.
    """

    def __init__(self, sigma: float = 0.6, k: float = 1.6, tau: float = 0.98, epsilon: float = 0.0,
                 phi: float = 200.0, reference_size: int = 64) -> None:
        super().__init__()
        self.sigma, self.k, self.tau, self.epsilon, self.phi = sigma, k, tau, epsilon, phi
        self.reference_size = reference_size

    @staticmethod
    def _blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
        size = 2 * math.ceil(3 * sigma) + 1
        return TF.gaussian_blur(image, [size, size], [sigma, sigma])

    def forward(self, photos: torch.Tensor) -> torch.Tensor:
        # photos: B×3×H×W (or B×1×H×W) in [0, 1]
        gray = photos if photos.shape[1] == 1 else TF.rgb_to_grayscale(photos)
        gray = gray.float()
        sigma = self.sigma * photos.shape[-1] / self.reference_size
        d = self._blur(gray, sigma) - self.tau * self._blur(gray, self.k * sigma)
        soft = 1 + torch.tanh(self.phi * (d - self.epsilon))
        return torch.where(d >= self.epsilon, torch.ones_like(d), soft).clamp(0, 1)  # B×1×H×W

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, k={self.k}, tau={self.tau}, epsilon={self.epsilon}, phi={self.phi}"


class DrawingCache:
    """Drawings of images already seen, keyed by path, kept as 8-bit on the CPU.

    A mirrored image's drawing is the mirror of its drawing (the Gaussians are symmetric), so one
    entry serves both orientations.
    """

    def __init__(self) -> None:
        self.store: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.store)

    def __call__(self, xdog: XDoG, photos: torch.Tensor, keys: list[str],
                 flipped: torch.Tensor | None = None) -> torch.Tensor:
        """``B×3×H×W`` photos (as batched, possibly mirrored) → ``B×1×H×W`` drawings."""
        flipped = torch.zeros(len(keys), dtype=torch.bool) if flipped is None else flipped.bool().cpu()
        missing = [i for i, key in enumerate(keys) if key not in self.store]
        if missing:
            idx = torch.tensor(missing, device=photos.device)
            fresh = xdog(photos[idx])
            for j, i in enumerate(missing):
                drawing = fresh[j].flip(-1) if flipped[i] else fresh[j]
                self.store[keys[i]] = (drawing * 255).round().to(torch.uint8).cpu()
        out = torch.stack([self.store[key] for key in keys]).to(photos.device).float() / 255
        if flipped.any():
            out[flipped.to(photos.device)] = out[flipped.to(photos.device)].flip(-1)
        return out


class _Folder(Dataset):
    """Images of a folder (sorted), as drawings or as photos; undecodable files yield ``None``."""

    def __init__(self, paths: list[Path], size: int, grayscale: bool) -> None:
        self.paths = paths
        self.transform = v2.Compose([
            v2.ToImage(), v2.Resize(size, antialias=True), v2.CenterCrop(size), v2.ToDtype(torch.float32, scale=True),
        ])
        self.grayscale = grayscale

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = load_rgb(self.paths[index])
        if image is None:
            return {"skipped": str(self.paths[index])}
        tensor = self.transform(image)
        if self.grayscale:
            tensor = TF.rgb_to_grayscale(tensor)
        return {"image": tensor, "path": str(self.paths[index])}


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    good = [item for item in items if "skipped" not in item]
    batch: dict[str, Any] = {"path": [item["path"] for item in good],
                             "skipped": [item["skipped"] for item in items if "skipped" in item]}
    batch["image"] = torch.stack([item["image"] for item in good]) if good else torch.empty(0)
    return batch


class LineDrawings(L.LightningDataModule):
    """Predict-only DataModule: a folder of line drawings (or photos turned into drawings).

    Batches are ``{"drawing": B×1×S×S in [0, 1], "path": [B], "requested": M×K}`` plus
    ``"style": 1×3×S×S`` when a style photo is given (style transfer, docs/advae.md), else
    ``"num_styles"`` and ``"style_seed"`` (styles from the prior). The request lives here, not in
    the model, because ``affectlab predict --ckpt_path`` restores the model's arguments from the
    checkpoint.

    Args:
        root: folder of images (searched recursively).
        kind: ``drawings`` (used as they are, converted to gray), ``photos`` (turned into XDoG
            drawings) or ``auto`` (photos when the folder's images are in colour).
        style_photo: optional path of a photo whose style (background, illumination) is transferred.
        image_size: side of the square the model was trained on.
        attributes: the attribute names (linked to the model; defaults to the CelebA default set).
        chosen_attributes: the settings to synthesise, each ``{name: 0|1}`` over an all-off vector
            (e.g. ``[{Blond_Hair: 1, Pale_Skin: 1}, {Black_Hair: 1}]``); ``None``: one per hair colour.
        num_styles: styles sampled from the prior per drawing when there is no style photo.
        style_seed: seed of those styles (the same styles for every drawing).
        xdog: XDoG parameters (see ``XDoG``).
        batch_size: drawings per batch.
        num_workers: DataLoader workers.
    """

    def __init__(self, root: str = "drawings", kind: str = "auto", style_photo: str | None = None,
                 image_size: int = 64, attributes: list[str] | None = None,
                 chosen_attributes: list[dict[str, float]] | None = None, num_styles: int = 3, style_seed: int = 0,
                 xdog: dict[str, float] | None = None, batch_size: int = 16, num_workers: int = 0) -> None:
        super().__init__()
        if kind not in ("drawings", "photos", "auto"):
            raise InvalidValue(f"LineDrawings: kind must be drawings, photos or auto, not {kind!r}")

        self.root = Path(root).expanduser()
        self.kind = kind
        self.style_photo = style_photo
        self.image_size = image_size
        self.attributes = list(attributes or DEFAULT_ATTRIBUTES)
        self.requested = self._requests(chosen_attributes)
        self.num_styles, self.style_seed = num_styles, style_seed
        self.xdog = XDoG(**(xdog or {}))
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.skip_report = SkipReport()
        self.paths: list[Path] = []
        self.style: torch.Tensor | None = None

    @classmethod
    def check_arguments(cls, args: Mapping[str, Any]) -> None:
        """Refuse a missing folder or style photo before anything is built (CLI); the images are found in ``setup``."""
        root = Path(str(args.get("root") or "drawings")).expanduser()
        if not root.is_dir():
            raise MissingPath(f"LineDrawings: the folder {root} does not exist (--data.root)")
        style = args.get("style_photo")
        if style and not Path(str(style)).is_file():
            raise MissingPath(f"LineDrawings: the style photo {style} does not exist (--data.style_photo)")

    def _requests(self, chosen: list[dict[str, float]] | None) -> torch.Tensor:
        """``M×K`` attribute vectors: the chosen settings, or one per hair colour."""
        if chosen is None:
            hair = [n for n in self.attributes if n in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")]
            chosen = [{n: 1.0} for n in hair] or [{}]
        vectors = torch.zeros(len(chosen), len(self.attributes))
        for m, setting in enumerate(chosen):
            unknown = [n for n in setting if n not in self.attributes]
            if unknown:
                raise InvalidValue(f"LineDrawings: chosen_attributes names unknown attribute(s) {unknown}; "
                                   f"the attributes are {self.attributes}")
            for name, value in setting.items():
                vectors[m, self.attributes.index(name)] = float(value)
        return vectors

    def setup(self, stage: str | None = None) -> None:
        if not self.root.is_dir():
            raise MissingPath(f"LineDrawings: the folder {self.root} does not exist (--data.root)")
        self.paths = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise MissingPath(f"LineDrawings: no image ({', '.join(IMAGE_SUFFIXES)}) under {self.root}")
        if self.style_photo:
            image = load_rgb(self.style_photo)
            if image is None:
                raise MissingPath(f"LineDrawings: cannot decode the style photo {self.style_photo}")
            self.style = _Folder([Path(self.style_photo)], self.image_size, False).transform(image)[None]

    def _is_photo_folder(self) -> bool:
        if self.kind != "auto":
            return self.kind == "photos"
        image = load_rgb(self.paths[0])
        if image is None:
            return False
        t = TF.pil_to_tensor(image).float()
        return bool((t.max(0).values - t.min(0).values).mean() > 8)  # colour, not gray

    def predict_dataloader(self) -> DataLoader:
        photos = self._is_photo_folder()
        dataset = _Folder(self.paths, self.image_size, grayscale=not photos)
        self._photos = photos
        return DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=_collate)

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        self.skip_report.add("predict", batch.pop("skipped", []))
        image = batch.pop("image")
        batch["drawing"] = self.xdog(image) if getattr(self, "_photos", False) and len(image) else image
        batch["requested"] = self.requested.to(image.device)
        if self.style is not None:
            batch["style"] = self.style.to(image.device)
        else:
            batch["num_styles"], batch["style_seed"] = self.num_styles, self.style_seed
        return batch
