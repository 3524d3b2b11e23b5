"""The pictures the fake releases are made of.

``class_image`` draws a visually separable class: each class has its own hue and stripe
orientation (positive classes warm, negative cool), blurred by per-image noise, jitter and a
random blob, so a small CNN learns it in a few CPU epochs but chance is far from enough.
``write_bad_files`` writes the bad files real releases contain (CMYK, grayscale, palette, PNG
named .jpg, truncated, zero-byte), which exercise the robust decoding of ``datamodules/images.py``.
``photo`` makes photo-sized images with real photographic texture for the decoding benchmarks and tests.
"""

from __future__ import annotations

import colorsys
import functools
import io
from pathlib import Path

import numpy as np
from PIL import Image

from affectlab.datamodules.hierarchy import MIKELS


def class_image(label: int, rng: np.random.Generator, size: int = 64, n_classes: int = len(MIKELS),
                positive: bool | None = None, rank: int | None = None) -> Image.Image:
    """One RGB image of class ``label``: a hue band and stripe angle that identify the class.

    With ``positive`` given, positive classes take warm hues and negative ones cool hues (``rank``
    is the class's position within its sentiment), so the coarse level is visible too.
    """
    if positive is None:
        hue = label / n_classes
    else:
        hue = (0.02 if positive else 0.5) + 0.11 * (label if rank is None else rank)
    hue = float(np.clip(hue + rng.normal(0, 0.012), 0.0, 0.999))
    angle = np.pi * label / n_classes + rng.normal(0, 0.08)
    yy, xx = np.mgrid[0:size, 0:size] / size
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 6.3))
    base = np.array(colorsys.hsv_to_rgb(hue, 0.75, 0.9))
    image = base[None, None, :] * (0.55 + 0.45 * stripes[..., None])
    cy, cx, r = rng.uniform(0.2, 0.8, 2).tolist() + [rng.uniform(0.08, 0.2)]
    blob = ((yy - cy) ** 2 + (xx - cx) ** 2) < r**2
    image[blob] = rng.uniform(0, 1, 3)
    image = np.clip(image + rng.normal(0, 0.06, image.shape), 0, 1)
    return Image.fromarray((image * 255).astype(np.uint8))


@functools.cache
def _sample_photos() -> tuple[np.ndarray, ...]:
    from skimage import data

    return data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()


def photo(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A ``width×height`` mosaic of scikit-image's sample photos at their native pixel scale.

    Stretching one small photo to camera size would leave it blurry (cheap to decode, kind to any
    resampling); tiles of real photos keep natural texture and sharp edges at every size.
    """
    sources = _sample_photos()
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    tile_h, tile_w = min(height, 300), min(width, 400)
    for y in range(0, height, tile_h):
        for x in range(0, width, tile_w):
            src = sources[int(rng.integers(len(sources)))]
            h, w = min(tile_h, height - y), min(tile_w, width - x)
            oy, ox = int(rng.integers(0, src.shape[0] - h + 1)), int(rng.integers(0, src.shape[1] - w + 1))
            canvas[y:y + h, x:x + w] = src[oy:oy + h, ox:ox + w]
    return Image.fromarray(canvas)


def write_class_photos(root: Path, sizes: dict[str, tuple[int, int]], rng: np.random.Generator,
                       quality: int = 90) -> None:
    """FI's class-folder layout with camera-like photos: ``root/emotion_dataset/<class>/<class>_<name>.jpg``
    for every Mikels class and every ``name: (width, height)`` of ``sizes``."""
    for label in MIKELS:
        folder = root / "emotion_dataset" / label
        folder.mkdir(parents=True, exist_ok=True)
        for name, (width, height) in sizes.items():
            photo(width, height, rng).save(folder / f"{label}_{name}.jpg", quality=quality)


def write_bad_files(folder: Path, rng: np.random.Generator) -> list[str]:
    """Write the kinds of bad file real releases contain into ``folder``; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    good = class_image(0, rng)
    good.convert("CMYK").save(folder / "bad_cmyk.jpg")
    good.convert("L").save(folder / "bad_gray.jpg")
    good.convert("P").save(folder / "bad_palette.png")
    good.save(folder / "bad_png_named.jpg", format="PNG")
    buffer = io.BytesIO()
    good.save(buffer, format="JPEG")
    (folder / "bad_truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (folder / "bad_empty.jpg").write_bytes(b"")
    (folder / "bad_garbage.jpg").write_bytes(b"this is not an image" * 10)
    return ["bad_cmyk.jpg", "bad_gray.jpg", "bad_palette.png", "bad_png_named.jpg", "bad_truncated.jpg",
            "bad_empty.jpg", "bad_garbage.jpg"]
