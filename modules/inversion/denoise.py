"""Post-processing of an inverted image, as in the original (docs/inversion.md).

After the optimisation the mean is added back, the image is clipped to 0–255 and quantised to 8
bits, then total-variation denoised with Chambolle's algorithm (scikit-image,
``denoise_tv_chambolle``, weight 0.2 on the 0–1 image): the inversion has no image prior during
the optimisation, so high-frequency noise is removed afterwards.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.restoration import denoise_tv_chambolle

from affectlab.modules.inversion.trunk import CAFFE_MEAN


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Optimised images in the original's space → 8-bit RGB. ``B×3×H×W`` → ``B×3×H×W`` uint8."""
    mean = torch.tensor(CAFFE_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images.detach() + mean).clamp(0, 255).round().to(torch.uint8).cpu()


def from_unit(images: torch.Tensor) -> torch.Tensor:
    """0–1 RGB (a data batch) → the original's space, 0–255 minus the mean. ``B×3×H×W``."""
    mean = torch.tensor(CAFFE_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return images * 255.0 - mean


def tv_denoise(images: torch.Tensor, weight: float = 0.2) -> torch.Tensor:
    """Chambolle TV denoising of 8-bit images, per image. ``B×3×H×W`` uint8 → ``B×3×H×W`` uint8."""
    if weight <= 0:
        return images
    out = []
    for image in images:
        array = image.permute(1, 2, 0).numpy()                                 # H×W×3 uint8
        smooth = denoise_tv_chambolle(array, weight=weight, channel_axis=-1)   # H×W×3 float in 0–1
        out.append(torch.from_numpy(np.clip(np.rint(smooth * 255.0), 0, 255).astype(np.uint8)).permute(2, 0, 1))
    return torch.stack(out)


def postprocess(images: torch.Tensor, weight: float = 0.2) -> torch.Tensor:
    """Mean back, clip, quantise, TV-denoise. ``B×3×H×W`` (original's space) → uint8."""
    return tv_denoise(to_uint8(images), weight)
