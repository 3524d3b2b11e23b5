"""Feature map inversion (docs/inversion.md): see the texture every filter extracts, and restyle images.

- ``trunk``: VGG-19 with average pooling addressed by relu1_1 … relu5_4 (any torchvision CNN by
  node name), fed the original's 0–255 mean-subtracted input;
- ``codes``: the code modifications original / feature_map / random / purposeful (energy) and the
  Gram matrix, with guards against dead channels and near-zero share sums;
- ``module``: ``InversionModule``, a LightningModule whose only trainable parameter is a batch of
  images, and its experiments ``FeatureMapInversion``, ``RandomReallocation``, ``StyleTransfer``;
- ``denoise``: the original's post-processing (mean back, clip, Chambolle TV denoising);
- ``grids``: the PNG grids written to the run folder and W&B.
"""

from affectlab.modules.inversion.module import (
    FeatureMapInversion,
    InversionModule,
    RandomReallocation,
    StyleTransfer,
    Term,
)

__all__ = ["FeatureMapInversion", "InversionModule", "RandomReallocation", "StyleTransfer", "Term"]
