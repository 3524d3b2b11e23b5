"""The network whose codes are inverted: a CNN trunk addressed by layer names (docs/inversion.md).

VGG-19 (the paper's network) is rebuilt from torchvision's ``features`` with Caffe-style names
``conv1_1, relu1_1, …, pool1, …, relu5_4, pool5`` and its max pools swapped for **average**
pools, as in the original. Any other torchvision CNN is addressed by the node names of
``torchvision.models.feature_extraction`` (``layer3.1.relu_1`` for a ResNet); ``tiny_vgg`` is a
small VGG-style network with random weights for tests and examples; a ``.ckpt`` path is a network
trained with affectlab (``modules/inversion/trained.py``).

Input space. The image being optimised lives in the original's space: 0–255 RGB minus the ImageNet
channel means (123.68, 116.779, 103.939). torchvision's weights were trained on 0–1 RGB
standardised per channel, so the trunk's first step maps one onto the other exactly,
``x_tv = ((x + caffe_mean) / 255 − tv_mean) / tv_std``. Its features are multiplied by
``feature_scale`` (default 255 · mean(tv_std) ≈ 57.6) so their magnitude matches a network fed
0–255 input, which is what the original's SGD settings (lr 0.1, clipping 10) were chosen for;
without it, gradients with respect to the 0–255 image would be ~57.6² times smaller.

Colour difference from the original: the paper used a VGG-19 converted from Caffe (trained on
mean-subtracted 0–255 input, no per-channel std), torchvision's VGG-19 is a different training
run with a different input normalisation (channel std ≈ 0.23 and means 123.675/116.28/103.53). The
inverted textures therefore differ in colour and detail from the paper's figures; only the method
is the same.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models import get_model
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from affectlab.experiments.errors import InvalidValue
from affectlab.modules.backbones import load_weights
from affectlab.modules.inversion.trained import is_checkpoint, load_trained_trunk

#: The original's mean of 0–255 RGB (docs/inversion.md), and torchvision's normalisation of 0–1 RGB.
CAFFE_MEAN = (123.68, 116.779, 103.939)
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


def feature_scale_for(std: Sequence[float]) -> float:
    """Brings features of a network fed input standardised by ``std`` to the magnitude of a 0–255-input one."""
    return 255.0 * sum(std) / len(std)


CAFFE_FEATURE_SCALE = feature_scale_for(TORCHVISION_STD)

#: Channel widths of tiny_vgg's blocks: two convolutions per block, VGG-style.
TINY_VGG = ((8, 8), (16, 16), (32, 32))


class CaffeToTorchvision(nn.Module):
    """Maps the original's input (0–255 RGB minus CAFFE_MEAN) to a network's standardised input.

    ``mean``/``std`` are the network's per-channel input statistics on the 0–1 scale (torchvision's
    by default). With a single channel the network is a grey-level one: it sees the mean of the
    RGB channels, standardised.
    """

    def __init__(self, mean: Sequence[float] = TORCHVISION_MEAN, std: Sequence[float] = TORCHVISION_STD) -> None:
        super().__init__()
        if len(mean) not in (1, 3) or len(std) != len(mean):
            raise InvalidValue(f"mean and std need 1 (grey) or 3 (RGB) channels, got {mean} and {std}")
        self.grey = len(mean) == 1
        caffe = torch.tensor(CAFFE_MEAN).view(1, 3, 1, 1)
        if self.grey:
            caffe = caffe.mean(1, keepdim=True)
        net_mean, net_std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in (mean, std))
        # x_net = x / (255 σ) + (m_caffe / 255 − m_net) / σ, an exact per-channel affine map.
        self.register_buffer("scale", 1.0 / (255.0 * net_std), persistent=False)
        self.register_buffer("shift", (caffe / 255.0 - net_mean) / net_std, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B×3×H×W → B×C×H×W (C: 3, or 1 for grey)
        if self.grey:
            x = x.mean(1, keepdim=True)
        return x * self.scale + self.shift

    def seen(self, x: torch.Tensor) -> torch.Tensor:
        """What of ``x`` (original's space, ``B×3×H×W``) the network sees: all of it, or its grey level."""
        if not self.grey:
            return x
        mean = torch.tensor(CAFFE_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x + mean).mean(1, keepdim=True) - mean


#: The layers a VGG-style trunk is made of (and all ``vgg_layers`` can name).
VGG_MODULES = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d)


def vgg_layers(features: nn.Sequential, pooling: str = "avg") -> OrderedDict[str, nn.Module]:
    """Caffe-style names for a torchvision VGG ``features`` trunk; max pools become average pools.

    ReLUs are made out-of-place so a captured ``convX_Y`` output is not overwritten by its ReLU.
    """
    if pooling not in ("avg", "max"):
        raise InvalidValue(f"pooling must be 'avg' or 'max', got {pooling!r}")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    block, index = 1, 1
    for module in features:
        if isinstance(module, nn.Conv2d):
            layers[f"conv{block}_{index}"] = module
        elif isinstance(module, nn.BatchNorm2d):
            layers[f"bn{block}_{index}"] = module
        elif isinstance(module, nn.ReLU):
            layers[f"relu{block}_{index}"] = nn.ReLU(inplace=False)
            index += 1
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            layers[f"pool{block}"] = nn.AvgPool2d(2, 2) if pooling == "avg" else nn.MaxPool2d(2, 2)
            block, index = block + 1, 1
        else:
            raise ValueError(f"unexpected module in a VGG trunk: {module}")
    return layers


def _vgg_init(features: nn.Sequential) -> nn.Sequential:
    """torchvision's VGG initialisation of the convolutional layers."""
    for module in features:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return features


def tiny_vgg(widths: Sequence[Sequence[int]] = TINY_VGG) -> nn.Sequential:
    """A small VGG-style trunk (3×3 convolutions, ReLU, 2×2 pools) with torchvision's VGG init."""
    modules, in_channels = [], 3
    for block in widths:
        for out_channels in block:
            modules += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True)]
            in_channels = out_channels
        modules.append(nn.MaxPool2d(2, 2))
    return _vgg_init(nn.Sequential(*modules))


def random_vgg_features(network: str) -> nn.Sequential:
    """The ``features`` trunk of a torchvision VGG with random weights, without building its classifier.

    The classifier (≈120M parameters for VGG-19) is never used by an inversion; initialising it
    would cost seconds on a CPU for nothing.
    """
    from torchvision.models.vgg import cfgs, make_layers

    configs = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}
    base = network.removesuffix("_bn")
    if base not in configs:
        raise InvalidValue(f"unknown VGG {network!r}; known: {', '.join(configs)} (and their _bn variants)")
    return _vgg_init(make_layers(cfgs[configs[base]], batch_norm=network.endswith("_bn")))


class FeatureTrunk(nn.Module):
    """A frozen CNN trunk that returns the codes of named layers, run only as deep as needed.

    ``forward(x, layers)`` takes ``B×3×H×W`` images in the original's space (0–255 minus the mean)
    and returns ``{layer: B×C_l×H_l×W_l}`` scaled by ``feature_scale``. For torchvision CNNs other
    than VGG a layer is a ``torch.fx`` node name (``layer2.1.relu_1``) or a module name (``layer2``).
    With ``truncate`` (the default) the network stops at the deepest requested layer; ``truncate=False`` runs the whole
    trunk, as a full forward would (the speed baseline in ``benchmarks/inversion.py``).

    Args:
        network: ``vgg19`` (or any torchvision VGG), ``tiny_vgg``, another torchvision CNN name, or
            the path of a ``.ckpt`` written by ``affectlab fit`` (``modules.inversion.trained``).
        pretrained: load torchvision's default weights (a clear error names the file when they are
            neither cached nor downloadable); a checkpoint brings its own, and with ``pretrained=False``
            its architecture gets random weights instead (``trained.random_twin``).
        pooling: ``avg`` (the original) or ``max`` pools in VGG-style trunks.
        feature_scale: multiplies every code; default 255 · mean(std) of the network's input
            standardisation (``CAFFE_FEATURE_SCALE`` for torchvision's, module docstring).
    """

    def __init__(self, network: str = "vgg19", pretrained: bool = True, pooling: str = "avg",
                 feature_scale: float | None = None) -> None:
        super().__init__()
        self.network = network
        self.sequential: nn.Sequential | None = None
        self._extractors: dict[tuple[str, ...], nn.Module] = {}
        self._names: list[str] = []
        mean, std = TORCHVISION_MEAN, TORCHVISION_STD
        if is_checkpoint(network):
            trunk, (mean, std) = load_trained_trunk(network, weights=pretrained)
            if all(isinstance(m, VGG_MODULES) for m in trunk):
                self.sequential = nn.Sequential(vgg_layers(trunk, pooling))
            else:
                self.model = trunk
        elif network == "tiny_vgg":
            if pretrained:
                raise InvalidValue("tiny_vgg has no pretrained weights; pass pretrained=False")
            self.sequential = nn.Sequential(vgg_layers(tiny_vgg(), pooling))
        elif network.startswith("vgg") and not pretrained:
            self.sequential = nn.Sequential(vgg_layers(random_vgg_features(network), pooling))
        else:
            model = get_model(network, weights=load_weights(network) if pretrained else None)
            if network.startswith("vgg"):
                self.sequential = nn.Sequential(vgg_layers(model.features, pooling))
            else:
                self.model = model
        self.preprocess = CaffeToTorchvision(mean, std)
        self.feature_scale = feature_scale_for(std) if feature_scale is None else float(feature_scale)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FeatureTrunk:
        """The trunk is a fixed function of the image: it always stays in eval mode."""
        return super().train(False)

    @property
    def layer_names(self) -> list[str]:
        """Addressable layers in forward order."""
        if self.sequential is not None:
            return [name for name, _ in self.sequential.named_children()]
        if not self._names:                     # tracing the graph takes a while: once
            self._names = get_graph_node_names(self.model)[1][1:]   # without the input placeholder
        return self._names

    def check(self, layers: Sequence[str]) -> None:
        """One error naming the unknown layers and a few valid names."""
        unknown = [layer for layer in layers if self._nodes(layer) == []]
        if unknown:
            names = self.layer_names
            raise InvalidValue(f"unknown layer(s) {unknown} for {self.network}; valid names include "
                               f"{', '.join(names[:12])}{' …' if len(names) > 12 else ''} (all: {len(names)})")

    def _nodes(self, layer: str) -> list[int]:
        """Positions of the nodes that ``layer`` names: itself, or every node inside a module of that name."""
        return [i for i, name in enumerate(self.layer_names) if name == layer or name.startswith(layer + ".")]

    def depth(self, layer: str) -> int:
        """Position of ``layer``'s output in forward order (a module's output is its last node)."""
        nodes = self._nodes(layer)
        if not nodes:
            self.check([layer])
        return nodes[-1]

    def forward(self, x: torch.Tensor, layers: Sequence[str], truncate: bool = True) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        x = self.preprocess(x)
        if self.sequential is not None:
            deepest = max(self.depth(layer) for layer in wanted) if truncate else len(self.sequential) - 1
            out: dict[str, torch.Tensor] = {}
            for index, (name, module) in enumerate(self.sequential.named_children()):
                x = module(x)
                if name in wanted:
                    out[name] = x * self.feature_scale
                if index == deepest:
                    break
            return out
        return {name: f * self.feature_scale for name, f in self._extractor(tuple(sorted(wanted)), truncate)(x).items()
                if name in wanted}

    def _extractor(self, layers: tuple[str, ...], truncate: bool) -> nn.Module:
        """A torch.fx graph holding only the nodes these layers need (FX drops the rest)."""
        key = layers + (("<full>",) if not truncate else ())
        if key not in self._extractors:
            self.check(layers)
            nodes = list(layers) + ([] if truncate else [self.layer_names[-1]])
            self._extractors[key] = create_feature_extractor(self.model, return_nodes={n: n for n in nodes}).eval()
        return self._extractors[key]
