"""A VGG-style classifier with average pools: the trunk feature map inversion is trained for (docs/inversion.md).

The paper inverts VGG-19 with its pools made **average** pools. ``AvgPoolVGGClassifier`` is the small
VGG of ``modules/small_cnn.py`` (3×3 convolution → batch norm → ReLU, a pool every two convolutions,
global average pooling, two linear layers) trained with average pools from the start, so the
network inverted is the network trained. Its checkpoint is an inversion trunk
(``FeatureTrunk("…/last.ckpt")``, Caffe names ``relu1_1 … relu3_2``); the same architecture with
random weights is ``FeatureTrunk("…/last.ckpt", pretrained=False)`` (``modules/inversion/trained.py``).
``experiments/inversion/train_trunk.yaml`` trains it on crops of scikit-image's photos and
textures (``datamodules.inversion.PhotoPatches``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from affectlab.experiments.errors import InvalidValue
from affectlab.modules.small_cnn import SmallCNNClassifier


class AvgPoolVGGClassifier(SmallCNNClassifier):
    """``SmallCNNClassifier`` whose pools are ``pooling`` (``avg`` by default, ``max`` as the original VGG).

    Args:
        pooling: ``avg`` or ``max``.
        **kwargs: ``SmallCNNClassifier``'s arguments (widths, pool_every, hidden, optimiser settings).
    """

    def __init__(self, *args: Any, pooling: str = "avg", **kwargs: Any) -> None:
        if pooling not in ("avg", "max"):
            raise InvalidValue(f"pooling must be 'avg' or 'max', got {pooling!r}")
        super().__init__(*args, **kwargs)
        if pooling == "avg":
            features = self.net.features
            for index, module in enumerate(features):
                if isinstance(module, nn.MaxPool2d):
                    features[index] = nn.AvgPool2d(2, 2)
