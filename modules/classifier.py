"""The flat baseline MDAN is compared with: a backbone, global average pooling and one linear head.

It predicts the finest level only; coarser levels are derived by summing child probabilities
through the taxonomy, exactly as MDAN's bottom-up branch does, so the two are compared on equal
terms at every level.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from affectlab.modules.backbones import Backbone, weights_name
from affectlab.modules.emotion import EmotionTask, TaxonomySpec, probabilities_from_leaves


class EmotionClassifier(EmotionTask):
    """Backbone + linear head over the finest level of the taxonomy.

    Args:
        taxonomy: linked from the DataModule (see ``EmotionTask``).
        backbone: a torchvision name (resnet18/50/101, vgg16, ...).
        pretrained: start from ImageNet weights through torchvision's weights API.
        weights: which weights when ``pretrained`` (``IMAGENET1K_V1``, ``DEFAULT``, ``none``); the
            checkpoint records their own name.
        in_channels: image channels (linked from ``data.num_channels``).
        dropout: dropout before the head.
        class_weights: weight the cross-entropy by inverse class frequency (set by the data
            module's ``class_weights`` link when the run asks for it).
        **kwargs: ``optimizer``, ``lr_scheduler``, ``backbone_lr_mult`` of ``EmotionTask``.
    """

    def __init__(
        self,
        taxonomy: TaxonomySpec = "mikels",
        backbone: str = "resnet50",
        pretrained: bool = True,
        weights: str | None = "IMAGENET1K_V1",
        in_channels: int = 3,
        dropout: float = 0.0,
        class_weights: list[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(taxonomy, **kwargs)
        self.hparams["weights"] = weights_name(backbone, weights) if pretrained else None
        self.backbone = Backbone(backbone, pretrained, weights, in_channels)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(self.backbone.out_channels,
                                                                              self.taxonomy.num_classes[-1]))
        self.register_buffer("class_weights", torch.tensor(class_weights) if class_weights else None, persistent=False)

    def compute(self, images: torch.Tensor) -> dict[str, Any]:
        features = self.backbone.forward_features(images)                    # B×C×h×w
        logits = self.head(F.adaptive_avg_pool2d(features, 1))                # B×n_K
        return {"logits": logits, "probs": probabilities_from_leaves(self.taxonomy, logits.softmax(1))}

    def loss(self, out: dict[str, Any], labels: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": F.cross_entropy(out["logits"], labels[-1], weight=self.class_weights)}

    def feature_trunk(self) -> nn.Sequential:
        return self.backbone.sequential()

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.head.parameters())

    def pruning_ignored_layers(self) -> list[nn.Module]:
        """The logits layer (docs/pruning.md: output layers are never pruned)."""
        return [self.head[-1]]
