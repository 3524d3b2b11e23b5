"""The fast input path: decode at the scale the crop needs, crop and resize in one resampling, uint8 out.

``DecodeCrop`` turns an image file into the network's ``3×S×S`` uint8 crop: the training crop
(RandomResizedCrop + horizontal flip, docs/mdan.md) or the evaluation crop (resize to S/0.875,
centre crop). It draws the same random numbers as the torchvision transforms of the reference
path (``datamodules/vea/base.py``), in the same order, so the same seed gives the same crop box
and flip. It differs in how the pixels are made (docs/datasets.md, "Decoding"):

- the crop box is computed on the file's full size from its header, before any pixel is decoded;
- a JPEG is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, PIL ``draft``) when the box
  still holds at least ``S`` decoded pixels per side, i.e. while the final resize still shrinks;
- at full scale the crop is the reference's own operations (integer box, torch's antialiased
  uint8 resize) on the box's H×W×3 memory, decoded by torchvision's libjpeg-turbo decoder (the
  same pixels as PIL's, without copying them out of PIL's buffer) for colour JPEGs; a
  reduced-scale training crop, whose box falls between decoded pixels, is resampled by PIL from
  the exact fractional box.
- no float image on the CPU.

Conversion to float and normalisation happen on the device, once per batch (``normalize_images``,
called by ``modules/emotion.py``'s batch-transfer hook).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from affectlab.datamodules.images import decode_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: the evaluation resize: the short side to ``size / EVAL_CROP_FRACTION``, then a centre crop (ImageNet's)
EVAL_CROP_FRACTION = 0.875

Box = tuple[float, float, float, float]


def eval_resize(size: int) -> int:
    return round(size / EVAL_CROP_FRACTION)


class DecodeCrop:
    """A file → ``3×size×size`` uint8 tensor, or ``None`` when it cannot be decoded.

    Args:
        size: side of the square output.
        train: the training crop (random box, random flip) rather than the evaluation crop.
        draft: decode JPEGs at reduced scale when the crop allows (False: always full scale).
        scale, ratio: RandomResizedCrop's area and aspect-ratio ranges.
        flip_p: probability of the horizontal flip.
        oversample: reduce a JPEG's scale only while the box keeps ``oversample × size`` decoded
            pixels per side (1: down to the output size; more: closer to the reference, slower).
    """

    def __init__(self, size: int, train: bool, draft: bool = True, scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3), flip_p: float = 0.5, oversample: float = 1.0,
                 resize: int | None = None) -> None:
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.size = int(size)
        self.resize = int(resize) if resize else eval_resize(self.size)  # evaluation: shorter side before the crop
        self.train = train
        self.draft = draft
        self.flip_p = flip_p
        if oversample < 1:
            raise ValueError(f"oversample must be at least 1, got {oversample}")
        self.oversample = oversample
        self._crop = v2.RandomResizedCrop(self.size, scale=tuple(scale), ratio=tuple(ratio), antialias=True)

    def box(self, full_size: tuple[int, int]) -> Box:
        """The crop box ``(left, top, right, bottom)`` in file pixels (training: draws from torch's RNG)."""
        width, height = full_size
        if self.train:
            # RandomResizedCrop's own parameter draw, on a shape-only stand-in for the image.
            params = self._crop.make_params([torch.empty((0, height, width), dtype=torch.uint8)])
            top, left = params["top"], params["left"]
            return (left, top, left + params["width"], top + params["height"])
        # v2.Resize(int) then v2.CenterCrop, expressed as one box in the file's pixels.
        short, long = (width, height) if width <= height else (height, width)
        new_short = self.resize
        new_long = int(new_short * long / short)
        new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
        crop_top = int(round((new_h - self.size) / 2.0))
        crop_left = int(round((new_w - self.size) / 2.0))
        sx, sy = width / new_w, height / new_h
        return (crop_left * sx, crop_top * sy, (crop_left + self.size) * sx, (crop_top + self.size) * sy)

    def needed(self, full_size: tuple[int, int], box: Box) -> tuple[int, int]:
        """The smallest decoded size that keeps ``oversample × size`` pixels across the box, in both directions."""
        width, height = full_size
        bw, bh = box[2] - box[0], box[3] - box[1]
        need = self.size * self.oversample
        return (math.ceil(width * need / bw), math.ceil(height * need / bh))

    def __call__(self, path: str | os.PathLike) -> torch.Tensor | None:
        boxes: list[Box] = []

        def plan(full_size: tuple[int, int]) -> tuple[int, int] | None:
            boxes.append(self.box(full_size))
            return self.needed(full_size, boxes[0]) if self.draft else None

        decoded = decode_rgb(path, plan, tensor=True)
        if decoded is None:
            return None
        k = decoded.scale
        if self.train and k > 1:
            # The box falls between decoded pixels: PIL resamples it exactly, reading only the box.
            crop = decoded.image.resize((self.size, self.size), Image.BILINEAR, box=tuple(c / k for c in boxes[0]))
            return self._flip(_chw_view(crop)).contiguous()
        if self.train:  # the reference's very operations: integer box, then torch's antialiased resize
            left, top, right, bottom = (int(c) for c in boxes[0])
            if decoded.tensor is not None:
                # A box of the decoded H×W×3 memory, copied to its own H×W×3 block: torch's antialiased
                # uint8 resize takes its fast path only on memory of that shape (the same result).
                region = decoded.tensor[:, top:bottom, left:right].permute(1, 2, 0).contiguous().permute(2, 0, 1)
            else:
                region = _chw_view(decoded.image.crop((left, top, right, bottom)))  # copies only the box
            crop = self._flip(TF.resize(region, [self.size, self.size], antialias=True))
        else:  # the reference's Resize(int) + CenterCrop, on the (possibly reduced) decoded image
            image = decoded.tensor if decoded.tensor is not None else _chw_view(decoded.image)
            crop = TF.center_crop(TF.resize(image, [eval_resize(self.size)], antialias=True), [self.size])
        return crop  # a new tensor in channels-last order: the batch collation copies it once anyway

    def _flip(self, crop: torch.Tensor) -> torch.Tensor:
        if torch.rand(1) < self.flip_p:  # RandomHorizontalFlip's draw, after the crop's
            return TF.horizontal_flip(crop)
        return crop

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, train={self.train}, draft={self.draft})"


def _chw_view(image: Image.Image) -> torch.Tensor:
    """An RGB image's H×W×3 memory seen as 3×H×W: torch's antialiased uint8 resize is fastest on it.

    The array is read-only (PIL's buffer) and never written: every later step makes a new tensor.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.asarray(image)).permute(2, 0, 1)


def normalize_images(images: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD, channels_last: bool | None = None) -> torch.Tensor:
    """uint8 ``B×C×H×W`` → float32 standardised (``(x/255 − mean)/std``), where the tensor already is.

    A floating-point tensor is returned unchanged: it was standardised already, so calling this
    twice normalises once. The arithmetic is torchvision's ``to_dtype(scale=True)`` then
    ``normalize``, the reference path's on the CPU. ``channels_last`` (default: on CUDA) returns
    the batch in channels-last memory order, which cuDNN convolutions then keep through the network.
    """
    if images.dtype != torch.uint8:
        return images
    if images.numel() == 0:  # a batch whose every file was unreadable: nothing to standardise
        return images.float()
    out = TF.normalize(TF.to_dtype(images, torch.float32, scale=True), list(mean), list(std))
    if channels_last is None:
        channels_last = images.is_cuda
    if channels_last and out.dim() == 4:
        out = out.contiguous(memory_format=torch.channels_last)
    return out


def unit_rgb(images: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
             std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """Images for display, ``…×3×H×W`` in [0, 1]: uint8 divided by 255, standardised floats de-standardised."""
    if images.dtype == torch.uint8:
        return images.float() / 255
    shape = (len(mean), 1, 1)
    m = torch.tensor(mean, device=images.device, dtype=torch.float32).view(shape)
    s = torch.tensor(std, device=images.device, dtype=torch.float32).view(shape)
    return (images.float() * s + m).clamp(0, 1)
