"""torchvision backbones as named stage feature extractors (docs/design.md, "modules/backbones.py").

``Backbone`` wraps a torchvision classification network and exposes its stages by name with
their channel counts, so MDAN's Affective Semantic Mapping can attach heads to any stage and the
flat baseline can use the last one. Pretrained weights go through torchvision's weights API; when
the weights file is absent and cannot be downloaded, one error says which file to put where.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models import get_model, get_model_weights

#: Stage names per family; ResNet stages follow torchvision's module names.
RESNET_STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")
VGG_STAGES = ("block1", "block2", "block3", "block4", "block5")
SUPPORTED = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg11", "vgg13", "vgg16", "vgg19",
             "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were asked for but are neither cached nor downloadable."""


def weights_path(name: str) -> Path:
    """Where torchvision caches the default weights of ``name``."""
    weights = get_model_weights(name).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def load_weights(name: str) -> torchvision.models.WeightsEnum:
    """The default weights of ``name``, downloaded if needed, with a clear error offline."""
    weights = get_model_weights(name).DEFAULT
    target = weights_path(name)
    if not target.exists():
        try:
            weights.get_state_dict(progress=True, check_hash=True)
        except Exception as err:  # URLError, HTTPError, socket errors, hash mismatch...
            raise WeightsUnavailableError(
                f"pretrained weights for {name} ({weights}) are not cached and could not be downloaded "
                f"({type(err).__name__}: {err}).\nDownload {weights.url}\nand put it at {target}\n"
                f"(the folder is $TORCH_HOME/hub/checkpoints/; TORCH_HOME defaults to ~/.cache/torch), "
                f"or run with --model.pretrained false."
            ) from err
    return weights


def build_torchvision(name: str, pretrained: bool) -> nn.Module:
    """A torchvision classification model, with its default weights when ``pretrained``."""
    if name not in SUPPORTED:
        raise ValueError(f"unknown backbone {name!r}; supported: {', '.join(SUPPORTED)}")
    return get_model(name, weights=load_weights(name) if pretrained else None)


class Backbone(nn.Module):
    """A CNN trunk split into named stages.

    ``forward(x)`` returns ``{stage: B×C_s×H_s×W_s}`` for every stage (or only ``until`` and
    earlier), ``channels[stage]`` is ``C_s``, ``reductions[stage]`` the stride w.r.t. the input.
    """

    def __init__(self, name: str = "resnet50", pretrained: bool = True) -> None:
        super().__init__()
        self.name = name
        net = build_torchvision(name, pretrained)
        if name.startswith("resnet"):
            stages = OrderedDict(
                stem=nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool),
                layer1=net.layer1, layer2=net.layer2, layer3=net.layer3, layer4=net.layer4,
            )
        else:  # VGG: cut the feature trunk after each max pool
            stages, current, index = OrderedDict(), [], 1
            for layer in net.features:
                current.append(layer)
                if isinstance(layer, nn.MaxPool2d):
                    stages[f"block{index}"] = nn.Sequential(*current)
                    current, index = [], index + 1
        self.stages = nn.ModuleDict(stages)
        self.channels: dict[str, int] = {}
        self.reductions: dict[str, int] = {}
        with torch.no_grad():
            was_training = self.training
            self.eval()
            x = torch.zeros(1, 3, 64, 64)
            for stage, module in self.stages.items():
                x = module(x)
                self.channels[stage] = x.shape[1]
                self.reductions[stage] = 64 // x.shape[-1]
            self.train(was_training)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(self.stages.keys())

    @property
    def out_channels(self) -> int:
        return self.channels[self.stage_names[-1]]

    def forward(self, x: torch.Tensor, until: str | None = None) -> dict[str, torch.Tensor]:
        features = {}
        for stage, module in self.stages.items():
            x = module(x)
            features[stage] = x
            if stage == until:
                break
        return features

    def sequential(self) -> nn.Sequential:
        """The stages as one ``nn.Sequential`` sharing their modules: ResNet stages by name, VGG layers flat."""
        if self.name.startswith("resnet"):
            return nn.Sequential(OrderedDict(self.stages.items()))
        return nn.Sequential(*(layer for stage in self.stages.values() for layer in stage))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map, ``B×C×h×w``."""
        for module in self.stages.values():
            x = module(x)
        return x
