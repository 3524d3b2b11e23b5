"""Feature map inversion (docs/inversion.md): see the texture every filter extracts, and restyle images.

- ``trunk``: VGG-19 with average pooling addressed by relu1_1 … relu5_4 (any torchvision CNN by
  node name), fed the original's 0–255 mean-subtracted input;
- ``codes``: the code modifications original / feature_map / random / sort_and_shift (the
  authors' purposeful code), the energy and Gram statistics, with guards against dead channels
  and near-zero share sums;
- ``module``: ``InversionModule``, a LightningModule whose only trainable parameter is a batch of
  images, and its experiments ``FeatureMapInversion``, ``RandomReallocation``, ``StyleTransfer``;
- ``denoise``: the original's post-processing (mean back, clip, Chambolle TV denoising);
- ``grids``: the PNG grids written to the run folder and W&B;
- ``trained``: checkpoints of affectlab classifiers as trunks, and their random twins;
- ``classifier``: the average-pooled VGG trained as the trunk the claim is measured on;
- ``texture``: texture descriptor, filter specificity, hue entropy and high-frequency share of
  inverted images (``benchmarks/inversion_quality.py``).
"""

from affectlab.modules.inversion.module import (
    FeatureMapInversion,
    InversionModule,
    RandomReallocation,
    StyleTransfer,
    Term,
)

__all__ = ["FeatureMapInversion", "InversionModule", "RandomReallocation", "StyleTransfer", "Term"]
