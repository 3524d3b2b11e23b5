"""Networks trained with affectlab as inversion trunks: what do the filters of *your* classifier extract?

``FeatureTrunk("runs/<experiment>/<run>/checkpoints/best-epoch007.ckpt")`` reads a checkpoint
written by ``affectlab fit`` — MDAN, the baseline classifier, the small VGG of the pruning
experiments, pruned checkpoints included — and inverts codes of the convolutional trunk its
module exposes (``EmotionTask.feature_trunk``). VGG-style trunks get the Caffe names
(``relu2_1``; ``modules.inversion.trunk.vgg_layers``), others ``torch.fx`` node names
(``layer3.1.relu_1``, ``stem.2``). The image is fed to the network as it was trained: standardised
with the ``input_normalization`` of the checkpoint's data class (ImageNet's for the emotion
benchmarks, Fashion-MNIST's grey level for the small VGG); a grey-level network sees the mean of
the image's RGB channels.

``pretrained=False`` gives the checkpoint's architecture with **random** weights instead — the
control that tells what training adds to the textures (``random_twin``): convolutions drawn as
torchvision's VGGs are (Kaiming normal, fan-out), batch norms reset to the identity.

Only classes under ``modules.`` and ``datamodules.`` are imported from a checkpoint, so loading
one never runs code from elsewhere.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from affectlab.experiments.errors import InvalidValue, MissingPath

#: (mean, std) per input channel, 0–1 scale.
Normalization = tuple[tuple[float, ...], tuple[float, ...]]


def is_checkpoint(network: str) -> bool:
    """Whether ``network`` names a checkpoint file rather than a torchvision architecture."""
    return str(network).endswith(".ckpt")


def _import(class_path: str | None, package: str, path: Path, what: str) -> Any:
    if not class_path or not class_path.startswith(package + "."):
        raise InvalidValue(f"{path} does not name an affectlab {what} class (found {class_path!r}; a checkpoint "
                           f"written by `affectlab fit` records one under {package}.)")
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def first_conv(trunk: nn.Module) -> nn.Conv2d:
    return next(m for m in trunk.modules() if isinstance(m, nn.Conv2d))


def random_twin(trunk: nn.Module) -> nn.Module:
    """The same architecture with random weights, in place: Kaiming-normal (fan-out) convolutions with zero bias,
    batch norms reset to the identity (weight 1, bias 0, running mean 0 and variance 1). Draws from the global RNG."""
    for module in trunk.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_parameters()           # running statistics and affine parameters
    return trunk


@torch.no_grad()
def calibrate_batch_norm(trunk: nn.Module, batches) -> nn.Module:
    """Set every batch norm's running statistics to those of ``trunk`` on ``batches`` (the network's input), in place.

    A random twin's batch norms are the identity, so its activations shrink or grow with depth while
    the trained network's are standardised; calibrating them on the training images gives random
    filters with the trained network's activation scale (a stricter control). Returns ``trunk``.
    """
    norms = [m for m in trunk.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        raise ValueError("the trunk has no batch norm to calibrate")
    modes = [(m, m.training, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None                        # a cumulative average over all batches
        m.train()
    seen = 0
    for batch in batches:
        trunk(batch)
        seen += 1
    for m, training, momentum in modes:
        m.train(training)
        m.momentum = momentum
    if not seen:
        raise ValueError("calibrate_batch_norm needs at least one batch")
    return trunk


def load_trained_trunk(path: str | Path, weights: bool = True) -> tuple[nn.Sequential, Normalization]:
    """The convolutional trunk of an affectlab classifier checkpoint and the input normalisation it was trained with.

    ``weights=False``: the same trunk with random weights (``random_twin``), fed the same way.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingPath(f"no checkpoint at {path}: pass a .ckpt written by `affectlab fit` "
                          f"(runs/<experiment>/<run>/checkpoints/best-*.ckpt or last.ckpt)")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    hparams = checkpoint.get("hyper_parameters", {})
    cls = _import(hparams.get("_class_path"), "affectlab.modules", path, "model")
    # The weights come from the checkpoint: never fetch the backbone's ImageNet weights first.
    overrides = {"pretrained": False} if "pretrained" in hparams else {}
    model = cls.load_from_checkpoint(path, map_location="cpu", weights_only=True, **overrides)
    trunk = model.feature_trunk()
    if not weights:
        trunk = random_twin(trunk)

    data = checkpoint.get("datamodule_hyper_parameters", {}).get("_class_path")
    channels = first_conv(trunk).in_channels
    if data is None and channels == 3:
        warnings.warn(f"{path} records no data class: assuming ImageNet's input normalisation", stacklevel=2)
        from affectlab.datamodules.vea.base import IMAGENET_MEAN, IMAGENET_STD
        normalization: Normalization = (IMAGENET_MEAN, IMAGENET_STD)
    else:
        data_class = _import(data, "affectlab.datamodules", path, "data")
        normalization = getattr(data_class, "input_normalization", None)
        if normalization is None:
            raise InvalidValue(f"{data_class.__name__} (the data of {path}) declares no input_normalization, "
                               f"so the image cannot be fed as the network was trained")
    if len(normalization[0]) != channels:
        raise InvalidValue(f"{path}: the network takes {channels} input channels, its data's normalisation "
                           f"{normalization} has {len(normalization[0])}")
    return trunk, normalization
