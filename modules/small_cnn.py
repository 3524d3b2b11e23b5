"""A small VGG-style CNN for CPU experiments (gradual global pruning on Fashion-MNIST, docs/pruning.md).

Blocks of ``conv3×3 → batch norm → ReLU`` with a max pool after every ``pool_every`` convolutions,
global average pooling, one hidden linear layer and the logits layer. Every convolution and the
hidden linear layer are prunable; the logits layer is the output layer and never is.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from affectlab.modules.emotion import EmotionTask, TaxonomySpec, probabilities_from_leaves


class SmallVGG(nn.Module):
    """``B×C×H×W`` images → ``B×num_classes`` logits."""

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (32, 32, 64, 64, 128), pool_every: int = 2,
                 hidden: int = 128, num_classes: int = 10, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for i, width in enumerate(widths):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            if (i + 1) % pool_every == 0:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                        nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)                                  # B×C×h×w
        return self.classifier(F.adaptive_avg_pool2d(features, 1))    # B×n


class SmallCNNClassifier(EmotionTask):
    """A ``SmallVGG`` trained from scratch on the finest level of the data's taxonomy.

    Args:
        taxonomy: linked from the DataModule (a flat 10-class taxonomy for Fashion-MNIST).
        in_channels: image channels (linked from ``data.num_channels``; 3 when the data has none).
        widths: output channels of the convolutions.
        pool_every: convolutions between two max pools.
        hidden: units of the hidden linear layer.
        dropout: dropout before the logits.
        image_size: linked from the data; kept in the hyperparameters only (the network pools
            globally, so any size works).
        backbone_lr_mult: 1, nothing is pretrained.
        **kwargs: ``optimizer`` (default AdamW, lr 2e-3, weight decay 5e-4), ``lr_scheduler`` of ``EmotionTask``.
    """

    def __init__(
        self,
        taxonomy: TaxonomySpec = "mikels",
        in_channels: int = 3,
        widths: list[int] = (32, 32, 64, 64, 128),
        pool_every: int = 2,
        hidden: int = 128,
        dropout: float = 0.0,
        image_size: int | None = None,
        backbone_lr_mult: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(taxonomy, backbone_lr_mult=backbone_lr_mult, **kwargs)
        self.net = SmallVGG(in_channels, tuple(widths), pool_every, hidden, self.taxonomy.num_classes[-1], dropout)

    @staticmethod
    def default_optimizer(params: Any) -> torch.optim.Optimizer:
        """AdamW, lr 2e-3, weight decay 5e-4 (docs/pruning.md)."""
        return torch.optim.AdamW(params, lr=2e-3, weight_decay=5e-4)

    def compute(self, images: torch.Tensor) -> dict[str, Any]:
        logits = self.net(images)                                     # B×n_K
        return {"logits": logits, "probs": probabilities_from_leaves(self.taxonomy, logits.softmax(1))}

    def loss(self, out: dict[str, Any], labels: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": F.cross_entropy(out["logits"], labels[-1])}

    def feature_trunk(self) -> nn.Sequential:
        return self.net.features

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.net.classifier.parameters())

    def pruning_ignored_layers(self) -> list[nn.Module]:
        """The logits layer (docs/pruning.md: output layers are never pruned)."""
        return [self.net.classifier[-1]]
