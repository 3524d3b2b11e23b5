"""Robust image decoding shared by every DataModule (docs/datasets.md, "Bad data is normal").

Real releases hold CMYK and palette JPEGs, grayscale and 16-bit images, PNGs named ``.jpg``,
truncated files, zero-byte files and files listed but missing. ``load_rgb`` turns whatever
decodes into an 8-bit RGB image and returns ``None`` for what cannot be decoded, so a reader can
skip the sample and count it instead of crashing an epoch. ``SkipReport`` is that count.

``decode_rgb`` is the same decoding for a reader that needs less than the full resolution: given
the smallest size it needs, a JPEG is decoded at 1/2, 1/4 or 1/8 scale in libjpeg's DCT (PIL's
``draft``) while the result still covers that size (docs/datasets.md, "Decoding").
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from PIL import Image, ImageFile, UnidentifiedImageError

log = logging.getLogger(__name__)

#: Background for images with transparency, so an alpha channel never leaks black regions.
BACKGROUND = (255, 255, 255)
_DECODE_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (alpha composited on white, 16-bit rescaled)."""
    if image.mode == "RGB":
        return image
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode == "F":
        image = image.convert("L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


@dataclass
class Decoded:
    """An RGB image decoded at ``1/scale`` of the file's ``full_size`` (``scale`` 1, 2, 4 or 8).

    Pixel ``x`` of the decoded image covers file pixels ``[x·scale, (x+1)·scale)``, so a box in
    file coordinates maps to ``box / scale`` here.
    """

    image: Image.Image | None
    full_size: tuple[int, int]
    scale: int = 1
    #: PIL's name of the file's format ("JPEG", "PNG", ...), whatever its extension says
    format: str | None = None
    #: with ``decode_rgb(..., tensor=True)``: the pixels as a ``3×H×W`` uint8 tensor over H×W×3 memory
    #: (torchvision's libjpeg-turbo decoder, bit-identical to PIL's), instead of ``image``
    tensor: torch.Tensor | None = None


#: ``needed(full_size) -> (width, height)``: the smallest size the caller needs, in file pixels.
Needed = Callable[[tuple[int, int]], tuple[int, int] | None]


def _open_decoded(path: str | os.PathLike, needed: Needed | None, full: list, tensor: bool = False) -> Decoded:
    with Image.open(path) as image:
        if not full:  # ask once: ``needed`` may draw random numbers (a crop) the caller relies on
            full.append(image.size)
            full.append(needed(image.size) if needed is not None else None)
        scale = 1
        if full[1] is not None and image.format == "JPEG":
            want = (max(1, int(full[1][0])), max(1, int(full[1][1])))
            drafted = image.draft(image.mode, want)
            if drafted is not None:
                scale = max(1, round(full[0][0] / drafted[1][2]))
        if tensor and scale == 1 and image.format == "JPEG" and image.mode == "RGB":
            from torchvision.io import ImageReadMode, decode_jpeg, read_file

            try:  # skips PIL's copy of the pixels out of its own buffer; what it cannot read, PIL does
                pixels = decode_jpeg(read_file(str(path)), mode=ImageReadMode.RGB)
                return Decoded(None, full[0], 1, "JPEG", pixels)
            except RuntimeError:
                pass
        image.load()
        return Decoded(to_rgb(image), full[0], scale, image.format)


def decode_rgb(path: str | os.PathLike, needed: Needed | None = None, tensor: bool = False) -> Decoded | None:
    """Decode ``path`` to RGB, a JPEG at reduced scale when ``needed`` allows; ``None`` when it cannot.

    ``needed`` receives the file's full ``(width, height)`` (read from the header, before any
    pixel is decoded) and returns the smallest ``(width, height)`` the caller needs, or ``None``
    for full resolution. libjpeg then decodes at the largest of 1/8, 1/4, 1/2 whose result is at
    least that size. It is called exactly once per decoded file. Other formats decode in full.
    With ``tensor``, a colour JPEG decoded at full scale comes as ``Decoded.tensor``.
    A truncated file is decoded as far as its data goes (the rest is grey), which is what most
    public pipelines do; a missing, empty or unidentifiable file gives ``None``.
    """
    full: list = []
    try:
        if os.path.getsize(path) == 0:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return _open_decoded(path, needed, full, tensor)
            except OSError:
                if not full:  # not even the header could be read
                    raise
                previous = ImageFile.LOAD_TRUNCATED_IMAGES
                ImageFile.LOAD_TRUNCATED_IMAGES = True
                try:
                    return _open_decoded(path, needed, full)
                finally:
                    ImageFile.LOAD_TRUNCATED_IMAGES = previous
    except _DECODE_ERRORS:
        return None


def load_rgb(path: str | os.PathLike) -> Image.Image | None:
    """Decode ``path`` to RGB whatever its format or extension; ``None`` when it cannot be decoded.

    A truncated file is decoded as far as its data goes (the rest is grey), which is what most
    public pipelines do; a missing, empty or unidentifiable file gives ``None``.
    """
    decoded = decode_rgb(path)
    return None if decoded is None else decoded.image


@dataclass
class SkipReport:
    """Counts the files skipped because they could not be decoded, per split, each file once.

    The first ``keep`` paths are kept so the log names real files a user can inspect.
    """

    keep: int = 5
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    seen: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def add(self, split: str, paths: Iterable[str]) -> None:
        """Count the files of ``paths`` not seen before in ``split`` (a bad file is met every epoch)."""
        seen = self.seen.setdefault(split, set())
        paths = [p for p in dict.fromkeys(paths) if p not in seen]
        if not paths:
            return
        seen.update(paths)
        self.counts[split] = self.counts.get(split, 0) + len(paths)
        first = self.examples.setdefault(split, [])
        new = [p for p in paths if p not in first][: max(0, self.keep - len(first))]
        first.extend(new)
        for p in new:
            log.warning("skipped unreadable image in %s: %s", split, p)

    def total(self, split: str | None = None) -> int:
        return sum(self.counts.values()) if split is None else self.counts.get(split, 0)

    def summary(self) -> str:
        if not self.counts:
            return "no unreadable images"
        parts = [f"{split}: {n} (e.g. {', '.join(self.examples.get(split, []))})" for split, n in self.counts.items()]
        return "unreadable images skipped — " + "; ".join(parts)
