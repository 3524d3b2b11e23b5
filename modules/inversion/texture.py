"""Measures of inverted textures: is a filter's texture specific to the filter, and how colourful and fine is it?

The paper's claim — *every filter extracts a specific texture* — is a claim about images: inverting
filter k on different content photos gives the same texture. ``specificity`` measures it on a
texture descriptor (docs/inversion.md):

- ``descriptor``: per image, three equally weighted blocks — colour (mean and std of R, G, B),
  orientation (a magnitude-weighted histogram of gradient orientations, 8 bins over 0–180°) and
  spectrum (the share of the grey level's power in 6 radial frequency bands). Each feature is
  standardised over the set compared, and each block divided by √(its size), so no block dominates.
- ``specificity``: nearest-neighbour filter agreement (the share of images whose nearest other
  image is the same filter on another photo) against its chance level, and the distance ratio
  mean d(same filter, other photo) / mean d(same photo, other filter) — below 1 when the filter
  decides the texture more than the photo does.

"Higher layers give more colours and more intricate structure": ``hue_entropy`` (entropy in bits of
the saturation-weighted hue histogram, 18 bins: 0 for one hue, log2 18 ≈ 4.17 for all hues
equally), ``saturation`` and ``high_frequency_share`` (share of the grey level's power above a
quarter cycle per pixel, half the Nyquist frequency).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from skimage.color import rgb2hsv

#: Radial frequency bands of the spectrum block, in cycles per pixel (0.5 is Nyquist).
BANDS = (0.0, 0.03125, 0.0625, 0.125, 0.25, 0.375, 0.5)


def _unit(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """``B×3×H×W`` uint8 or 0–1 float → ``B×H×W×3`` float64 in 0–1."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected B×3×H×W images, got shape {x.shape}")
    x = x.astype(np.float64) / (255.0 if x.dtype == np.uint8 else 1.0)
    return x.transpose(0, 2, 3, 1)


def _radial_frequency(h: int, w: int) -> np.ndarray:
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    return np.sqrt(fy ** 2 + fx ** 2)                              # H×W, cycles per pixel


def _power(grey: np.ndarray) -> np.ndarray:
    """Power spectrum of each mean-removed, Hann-windowed grey image. ``B×H×W`` → ``B×H×W``."""
    h, w = grey.shape[-2:]
    window = np.hanning(h)[:, None] * np.hanning(w)[None, :]
    centred = (grey - grey.mean(axis=(-2, -1), keepdims=True)) * window
    return np.abs(np.fft.fft2(centred)) ** 2


def colour_features(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Mean and standard deviation of R, G, B. → ``B×6``."""
    x = _unit(images)
    return np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], axis=1)


def orientation_histogram(images: torch.Tensor | np.ndarray, bins: int = 8) -> np.ndarray:
    """Gradient orientations (0–180°) of the grey level weighted by gradient magnitude, normalised. → ``B×bins``."""
    grey = _unit(images).mean(axis=-1)
    gy, gx = np.gradient(grey, axis=(1, 2))
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    magnitude = np.hypot(gx, gy)
    index = np.minimum((angle / np.pi * bins).astype(int), bins - 1)
    out = np.stack([np.bincount(i.ravel(), weights=m.ravel(), minlength=bins) for i, m in zip(index, magnitude, strict=True)])
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)


def spectrum_bands(images: torch.Tensor | np.ndarray, bands: Sequence[float] = BANDS) -> np.ndarray:
    """Share of the grey level's power in each radial frequency band. → ``B×(len(bands) − 1)``."""
    grey = _unit(images).mean(axis=-1)
    power = _power(grey)
    radius = _radial_frequency(*grey.shape[-2:])
    out = np.stack([power[:, (radius > lo) & (radius <= hi)].sum(axis=1) for lo, hi in zip(bands[:-1], bands[1:], strict=True)], 1)
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)


def descriptor_blocks(images: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
    """The descriptor's blocks, each standardised over the set and divided by √(its size). → ``{name: B×d}``."""
    blocks = {"colour": colour_features(images), "orientation": orientation_histogram(images),
              "spectrum": spectrum_bands(images)}
    return {name: (b - b.mean(axis=0)) / np.maximum(b.std(axis=0), 1e-8) / np.sqrt(b.shape[1])
            for name, b in blocks.items()}


def descriptor(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Texture descriptor: colour, orientation and spectrum blocks, equally weighted. → ``B×20``."""
    return np.concatenate(list(descriptor_blocks(images).values()), axis=1)


def specificity(features: np.ndarray, filters: Sequence[int], photos: Sequence[str | int]) -> dict[str, float]:
    """How much the filter, rather than the content photo, decides an image's texture.

    ``features`` ``N×D`` (one row per inverted image, e.g. ``descriptor``), ``filters`` and ``photos``
    the filter and content photo of each row; every (filter, photo) pair at most once. Returns
    ``agreement`` (share of rows whose nearest other row has the same filter), ``chance`` (its
    expectation for a random neighbour: mean over rows of (same-filter rows − 1)/(N − 1)),
    ``d_same_filter`` (mean distance between rows of the same filter and other photos),
    ``d_same_photo`` (same photo, other filters) and ``ratio`` = d_same_filter / d_same_photo.
    """
    features = np.asarray(features, dtype=np.float64)
    filters, photos = np.asarray(filters), np.asarray(photos)
    n = len(features)
    if not (len(filters) == len(photos) == n) or n < 3:
        raise ValueError(f"need one filter and one photo per row and at least 3 rows, got {n} rows, "
                         f"{len(filters)} filters, {len(photos)} photos")
    if len(set(zip(filters.tolist(), photos.tolist(), strict=True))) != n:
        raise ValueError("each (filter, photo) pair may appear once")
    same_filter = filters[:, None] == filters[None, :]
    same_photo = photos[:, None] == photos[None, :]
    if not (same_filter & ~same_photo).any() or not (same_photo & ~same_filter).any():
        raise ValueError("need at least two photos and two filters to compare")
    distance = np.sqrt(((features[:, None, :] - features[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(distance, np.inf)
    nearest = distance.argmin(axis=1)
    d_filter = distance[same_filter & ~same_photo].mean()
    d_photo = distance[same_photo & ~same_filter].mean()
    return {"agreement": float((filters[nearest] == filters).mean()),
            "chance": float(((same_filter.sum(1) - 1) / (n - 1)).mean()),
            "d_same_filter": float(d_filter), "d_same_photo": float(d_photo),
            "ratio": float(d_filter / max(d_photo, 1e-12))}


def hue_entropy(images: torch.Tensor | np.ndarray, bins: int = 18) -> np.ndarray:
    """Entropy (bits) of each image's hue histogram weighted by saturation × value. → ``B``."""
    out = []
    for image in _unit(images):
        hsv = rgb2hsv(image)
        weight = (hsv[..., 1] * hsv[..., 2]).ravel()
        histogram = np.bincount(np.minimum((hsv[..., 0].ravel() * bins).astype(int), bins - 1), weights=weight,
                                minlength=bins)
        if histogram.sum() <= 1e-12:
            out.append(0.0)                                       # no colour at all
            continue
        p = histogram / histogram.sum()
        p = p[p > 0]
        out.append(float(-(p * np.log2(p)).sum()))
    return np.array(out)


def saturation(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Mean HSV saturation of each image. → ``B``."""
    return np.array([rgb2hsv(image)[..., 1].mean() for image in _unit(images)])


def high_frequency_share(images: torch.Tensor | np.ndarray, cutoff: float = 0.25) -> np.ndarray:
    """Share of the grey level's (mean-removed) power above ``cutoff`` cycles per pixel. → ``B``."""
    grey = _unit(images).mean(axis=-1)
    power = _power(grey)
    high = _radial_frequency(*grey.shape[-2:]) > cutoff
    return power[:, high].sum(axis=1) / np.maximum(power.sum(axis=(1, 2)), 1e-12)


def invert_on_photos(make_module, photos: Sequence[str], image_size: int, iterations: int, root: str | None = None,
                     default_root_dir: str | None = None) -> dict[str, torch.Tensor]:
    """Run the inversion ``make_module()`` builds once per content photo. → ``{photo: B×3×S×S uint8}``.

    ``make_module`` returns a fresh ``InversionModule`` (e.g. a ``FeatureMapInversion`` of K filters);
    each photo (a path or a scikit-image sample name, ``datamodules.inversion.InversionImages``) is
    resized to ``image_size`` and inverted for at most ``iterations`` steps without logging.
    """
    from lightning.pytorch import Trainer

    from affectlab.datamodules.inversion import InversionImages

    out = {}
    for photo in photos:
        module = make_module()
        data = InversionImages(content=photo, root=root, image_size=image_size, iterations=iterations)
        Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, accelerator="cpu", devices=1,
                default_root_dir=default_root_dir).fit(module, datamodule=data)
        out[photo] = module.results()
    return out
