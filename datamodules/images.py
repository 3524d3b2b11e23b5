"""Robust image decoding shared by every DataModule (docs/datasets.md, "Bad data is normal").

Real releases hold CMYK and palette JPEGs, grayscale and 16-bit images, PNGs named ``.jpg``,
truncated files, zero-byte files and files listed but missing. ``load_rgb`` turns whatever
decodes into an 8-bit RGB image and returns ``None`` for what cannot be decoded, so a reader can
skip the sample and count it instead of crashing an epoch. ``SkipReport`` is that count.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

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


def load_rgb(path: str | os.PathLike) -> Image.Image | None:
    """Decode ``path`` to RGB whatever its format or extension; ``None`` when it cannot be decoded.

    A truncated file is decoded as far as its data goes (the rest is grey), which is what most
    public pipelines do; a missing, empty or unidentifiable file gives ``None``.
    """
    try:
        if os.path.getsize(path) == 0:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                try:
                    image.load()
                except OSError:
                    previous = ImageFile.LOAD_TRUNCATED_IMAGES
                    ImageFile.LOAD_TRUNCATED_IMAGES = True
                    try:
                        with Image.open(path) as retry:
                            retry.load()
                            return to_rgb(retry)
                    finally:
                        ImageFile.LOAD_TRUNCATED_IMAGES = previous
                return to_rgb(image)
    except _DECODE_ERRORS:
        return None


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
