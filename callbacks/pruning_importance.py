"""Neuron importance, the bias elimination across layers, and the choice of neurons to remove.

docs/pruning.md ("Importance", "Bias elimination", "A step"): scores are measured per neuron, then
divided by a per-layer statistic so that layers of different scale, depth and fan-in become
comparable, and one global ranking over all remaining neurons picks the lowest ``step_ratio``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from affectlab.callbacks.pruning_graph import NeuronGroup

CRITERIA = ("activation", "l1", "taylor")
NORMALIZATIONS = ("mean", "l2", "max", "none")
MODES = ("global", "layerwise", "global_unnormalised", "one_shot")


def _channel_dim(site: nn.Module, y: torch.Tensor) -> int:
    return -1 if isinstance(site, nn.Linear) or y.dim() == 2 else 1


def _per_channel(y: torch.Tensor, dim: int) -> torch.Tensor:
    """``B×C×...`` (or ``B×...×C`` for linear layers) → ``B×C``: the mean over every other position."""
    y = y.movedim(dim, -1)
    return y.reshape(y.shape[0], -1, y.shape[-1]).mean(1)


def l1_scores(groups: Sequence[NeuronGroup]) -> list[torch.Tensor]:
    """L1 norm of each neuron's incoming weights (averaged over the coupled layers of a group)."""
    return [torch.stack([layer.weight.detach().abs().flatten(1).sum(1) for layer in g.layers]).mean(0).float()
            for g in groups]


def activation_scores(model: nn.Module, groups: Sequence[NeuronGroup], batches: Iterable[torch.Tensor],
                      forward: Callable[[torch.Tensor], object], taylor: bool = False,
                      loss: Callable[[object, int], torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Mean post-activation magnitude (default) or first-order Taylor ``|a · ∂L/∂a|`` per neuron.

    The post-activation is ``ReLU`` of each neuron's pre-activation (the batch norm after the layer
    when there is one); Taylor uses the pre-activation and its gradient (Molchanov et al.). Batches
    run in eval mode so that batch-norm statistics do not move.

    Args:
        model: the network (used for its mode only).
        groups: the neuron groups to score.
        batches: images ``B×C×H×W``, already on the model's device.
        forward: runs the network on images and returns its outputs.
        taylor: score by Taylor instead of activation.
        loss: ``loss(outputs, batch_index) -> scalar`` for Taylor.
    """
    sites = {id(s): s for g in groups for s in g.sites}
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, int] = {}
    captured: dict[int, torch.Tensor] = {}

    def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        key = id(module)
        if taylor:
            output.retain_grad()
            captured[key] = output
            return
        per = _per_channel(output.detach().relu(), _channel_dim(module, output)).abs().sum(0)  # C
        sums[key] = sums.get(key, 0) + per.float()
        counts[key] = counts.get(key, 0) + output.shape[0]

    handles = [s.register_forward_hook(hook) for s in sites.values()]
    was_training = model.training
    model.eval()
    try:
        for index, images in enumerate(batches):
            if taylor:
                model.zero_grad(set_to_none=True)
                with torch.enable_grad():
                    loss(forward(images), index).backward()
                for key, y in captured.items():
                    if y.grad is None:
                        continue
                    per = _per_channel((y * y.grad).detach(), _channel_dim(sites[key], y)).abs().sum(0)
                    sums[key] = sums.get(key, 0) + per.float()
                    counts[key] = counts.get(key, 0) + y.shape[0]
                captured.clear()
            else:
                with torch.no_grad():
                    forward(images)
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    scores = []
    for g in groups:
        per_site = [sums[id(s)] / max(counts[id(s)], 1) for s in g.sites if id(s) in sums]
        scores.append(torch.stack(per_site).mean(0) if per_site else torch.zeros(g.width))
    return scores


def normalise(scores: Sequence[torch.Tensor], how: str = "mean") -> list[torch.Tensor]:
    """Bias elimination across layers (docs/pruning.md): divide each layer's scores by its mean (default),
    L2 norm or max; ``none`` keeps the raw, biased scores."""
    if how not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {how!r}")
    out = []
    for s in scores:
        s = s.float()
        if how == "mean":
            s = s / s.mean().clamp_min(1e-12)
        elif how == "l2":
            s = s / s.norm().clamp_min(1e-12)
        elif how == "max":
            s = s / s.max().clamp_min(1e-12)
        out.append(s)
    return out


def select_global(scores: Sequence[torch.Tensor], count: int, min_channels: int = 1) -> list[list[int]]:
    """One ranking over all neurons: the ``count`` lowest, leaving at least ``min_channels`` per layer.

    Ties are broken by position (stable sort), so every process chooses the same neurons.
    """
    flat = torch.cat([s.float().cpu() for s in scores])
    owner = torch.cat([torch.full((len(s),), g) for g, s in enumerate(scores)])
    local = torch.cat([torch.arange(len(s)) for s in scores])
    order = torch.sort(flat, stable=True).indices
    room = [max(len(s) - min_channels, 0) for s in scores]
    chosen: list[list[int]] = [[] for _ in scores]
    taken = 0
    for i in order.tolist():
        if taken >= count:
            break
        g = int(owner[i])
        if len(chosen[g]) < room[g]:
            chosen[g].append(int(local[i]))
            taken += 1
    return chosen


def select_layerwise(scores: Sequence[torch.Tensor], ratio: float, min_channels: int = 1) -> list[list[int]]:
    """The same ratio in every layer (docs/pruning.md, comparison mode ``layerwise``); at least one neuron
    per layer that has room, so that small layers also shrink."""
    chosen = []
    for s in scores:
        room = max(len(s) - min_channels, 0)
        k = min(room, max(1, round(ratio * len(s)))) if room else 0
        chosen.append(torch.sort(s.float().cpu(), stable=True).indices[:k].tolist())
    return chosen


def step_count(widths: Sequence[int], ratio: float) -> int:
    """Neurons a global step removes: ``step_ratio`` of those remaining, at least one."""
    return max(1, math.floor(ratio * sum(widths) + 0.5))
