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

from affectlab.experiments.errors import InvalidValue, UserError

#: Stage names per family; ResNet stages follow torchvision's module names.
RESNET_STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")
VGG_STAGES = ("block1", "block2", "block3", "block4", "block5")
SUPPORTED = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg11", "vgg13", "vgg16", "vgg19",
             "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")


class WeightsUnavailableError(UserError, RuntimeError):
    """Pretrained weights were asked for but are neither cached nor downloadable."""


def resolve_weights(name: str, weights: str | None = "DEFAULT") -> torchvision.models.WeightsEnum | None:
    """torchvision's weights of ``name`` called ``weights`` (``IMAGENET1K_V1``, ``DEFAULT``, ...).

    ``None``, ``""`` or ``"none"`` mean no weights. ``DEFAULT`` is whatever torchvision calls its
    best weights today (``IMAGENET1K_V2`` for ResNet-50/101), which can change between releases;
    a config that must be reproducible names the weights (docs/mdan.md, "Training settings").
    """
    if weights is None or str(weights).lower() in ("", "none", "null"):
        return None
    enum = get_model_weights(name)
    try:
        return enum[str(weights).rsplit(".", 1)[-1]]  # "IMAGENET1K_V1" or "ResNet101_Weights.IMAGENET1K_V1"
    except KeyError:
        names = ", ".join(["DEFAULT", *enum.__members__])
        raise InvalidValue(f"unknown weights {weights!r} for {name}; torchvision has: {names}, or none") from None


def weights_path(name: str, weights: str | None = "DEFAULT") -> Path:
    """Where torchvision caches the file of ``weights`` of ``name``."""
    resolved = resolve_weights(name, weights) or get_model_weights(name).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(resolved.url)


def load_weights(name: str, weights: str | None = "DEFAULT") -> torchvision.models.WeightsEnum:
    """The ``weights`` of ``name``, downloaded if needed, with a clear error offline."""
    resolved = resolve_weights(name, weights) or get_model_weights(name).DEFAULT
    target = weights_path(name, str(resolved))
    if not target.exists():
        try:
            resolved.get_state_dict(progress=True, check_hash=True)
        except Exception as err:  # URLError, HTTPError, socket errors, hash mismatch...
            raise WeightsUnavailableError(
                f"pretrained weights for {name} ({resolved}) are not cached and could not be downloaded "
                f"({type(err).__name__}: {err}).\nDownload {resolved.url}\nand put it at {target}\n"
                f"(the folder is $TORCH_HOME/hub/checkpoints/; TORCH_HOME defaults to ~/.cache/torch), "
                f"or run with --model.pretrained false."
            ) from err
    return resolved


def check_backbone(name: str) -> None:
    """Refuse a backbone name this project cannot build (``InvalidValue`` listing the supported ones)."""
    if name not in SUPPORTED:
        raise InvalidValue(f"unknown backbone {name!r}; supported: {', '.join(SUPPORTED)}")


def build_torchvision(name: str, pretrained: bool, weights: str | None = "DEFAULT") -> nn.Module:
    """A torchvision classification model, with its ``weights`` when ``pretrained``."""
    check_backbone(name)
    return get_model(name, weights=load_weights(name, weights) if pretrained and weights_name(name, weights) else None)


def weights_name(name: str, weights: str | None) -> str | None:
    """The weights' own name (``IMAGENET1K_V2`` for ``DEFAULT`` on ResNet-101), ``None`` for none."""
    resolved = resolve_weights(name, weights)
    return None if resolved is None else resolved.name


def grey_stem(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """The first convolution for ``in_channels`` inputs (1 for grey images such as Fashion-MNIST).

    Each new input channel gets the sum of the RGB kernels divided by ``in_channels``, so a grey
    image repeated over R, G, B (pretrained or not) and the same image on the new channels give the
    same response.
    """
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight.sum(1, keepdim=True).expand_as(new.weight) / in_channels)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


class Backbone(nn.Module):
    """A CNN trunk split into named stages.

    ``forward(x)`` returns ``{stage: B×C_s×H_s×W_s}`` for every stage (or only ``until`` and
    earlier), ``channels[stage]`` is ``C_s``, ``reductions[stage]`` the stride w.r.t. the input.

    Args:
        name: a torchvision classification network (``SUPPORTED``).
        pretrained: start from torchvision weights.
        weights: which ones when ``pretrained`` (``IMAGENET1K_V1``, ``DEFAULT``, ``none``; see
            ``resolve_weights``).
        in_channels: image channels; other than 3, the first convolution is rebuilt by ``grey_stem``.
    """

    def __init__(self, name: str = "resnet50", pretrained: bool = True, weights: str | None = "DEFAULT",
                 in_channels: int = 3) -> None:
        super().__init__()
        self.name = name
        self.in_channels = in_channels
        net = build_torchvision(name, pretrained, weights)
        if in_channels != 3:
            if name.startswith("resnet"):
                net.conv1 = grey_stem(net.conv1, in_channels)
            else:
                net.features[0] = grey_stem(net.features[0], in_channels)
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
            x = torch.zeros(1, in_channels, 64, 64)
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
