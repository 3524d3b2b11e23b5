"""Neuron importance, normalisation across layers, and the choice of neurons to remove.

docs/pruning.md ("Importance", "Normalisation", "A step"): scores are measured per neuron, made
comparable across layers, and one global ranking over all remaining neurons picks the neurons a
step removes — a share of the remaining FLOPs (default) or of the neurons.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
import torch_pruning as tp
from torch import nn

from affectlab.callbacks.pruning_graph import NeuronGroup
from affectlab.experiments.errors import InvalidValue

#: Criteria that read activations (need calibration batches); the others read weights only.
DATA_CRITERIA = ("activation", "std", "bn_scale", "taylor", "fisher")
#: Criteria that need the loss's gradient (one backward pass per calibration batch).
GRADIENT_CRITERIA = ("taylor", "fisher")
CRITERIA = ("activation", "std", "bn_scale", "l1", "weight_out", "taylor", "fisher")
NORMALIZATIONS = ("mean", "l2", "max", "none", "flops", "mean_flops")
MODES = ("global", "layerwise", "global_unnormalised", "one_shot")
STEP_UNITS = ("flops", "neurons")


def _channel_dim(site: nn.Module, y: torch.Tensor) -> int:
    return -1 if isinstance(site, nn.Linear) or y.dim() == 2 else 1


def _flat(y: torch.Tensor, dim: int) -> torch.Tensor:
    """``B×C×...`` (or ``B×...×C``) → ``B×P×C``: every position of every image, per channel."""
    y = y.movedim(dim, -1)
    return y.reshape(y.shape[0], -1, y.shape[-1])


def l1_scores(groups: Sequence[NeuronGroup]) -> list[torch.Tensor]:
    """L1 norm of each neuron's incoming weights in the group's first layer (torch-pruning's
    ``MagnitudeImportance(p=1, group_reduction="first")``)."""
    imp = tp.importance.MagnitudeImportance(p=1, group_reduction="first", normalizer=None)
    return [_tp_scores(imp, g) for g in groups]


def bn_scores(groups: Sequence[NeuronGroup]) -> list[torch.Tensor | None]:
    """``|γ|`` of the batch norm after each group (torch-pruning's ``BNScaleImportance``); ``None``
    for groups without one."""
    imp = tp.importance.BNScaleImportance(normalizer=None)
    return [_tp_scores(imp, g) if g.group is not None else None for g in groups]


def _tp_scores(imp: tp.importance.Importance, g: NeuronGroup) -> torch.Tensor | None:
    with torch.no_grad():
        scores = imp(g.group)
    return None if scores is None else scores.detach().float().cpu()


def outgoing_scores(groups: Sequence[NeuronGroup]) -> list[torch.Tensor]:
    """L1 norm of the weights that read each neuron (the input-channel slices of the consumers)."""
    out = []
    for g in groups:
        parts = []
        for layer in g.consumers:
            w = layer.weight.detach().abs()
            w = w.transpose(0, 1).flatten(1) if isinstance(layer, nn.modules.conv._ConvNd) else w.t()
            if len(w) == g.width:
                parts.append(w.sum(1).float().cpu())
        out.append(torch.stack(parts).mean(0) if parts else torch.zeros(g.width))
    return out


def response_scores(model: nn.Module, groups: Sequence[NeuronGroup], batches: Iterable[torch.Tensor],
                    forward: Callable[[torch.Tensor], object], taylor: bool = False,
                    loss: Callable[[object, int], torch.Tensor] | None = None) -> dict[str, list[torch.Tensor]]:
    """Statistics of every neuron's response over the calibration batches, in eval mode.

    Returns lists (one tensor per group) under ``activation`` (mean post-ReLU response), ``std``
    (standard deviation of the post-ReLU response over images and positions), ``pre_std`` (the
    same for the pre-activation: what ``|γ|`` measures for a batch-normed channel) and, with
    ``taylor``, ``taylor``: first-order Taylor ``|mean(a · ∂L/∂a)|`` per image, averaged
    (Molchanov et al.; the loss change of zeroing the neuron), and ``fisher``: half the mean over
    images of ``(Σ_positions a · ∂L_n/∂a)²`` with ``L_n`` the image's own loss (Theis et al., Fisher
    pruning): the second-order estimate of the loss rise, in loss units, so comparable across layers.

    Args:
        model: the network (used for its mode only).
        groups: the neuron groups to score; the pre-activation is the output of each group's sites.
        batches: images ``B×C×H×W``, already on the model's device.
        forward: runs the network on images and returns its outputs.
        taylor: also compute the Taylor and Fisher scores (one backward pass per batch; ``loss``
            must average over the batch's images).
        loss: ``loss(outputs, batch_index) -> scalar`` for Taylor.
    """
    sites = {id(s): s for g in groups for s in g.sites}
    sums: dict[str, dict[int, torch.Tensor]] = {k: {} for k in ("a", "a2", "p", "p2", "t", "f")}
    counts: dict[int, int] = {}
    images_seen: dict[int, int] = {}
    captured: dict[int, torch.Tensor] = {}

    def add(kind: str, key: int, value: torch.Tensor) -> None:
        sums[kind][key] = sums[kind].get(key, 0) + value.double()

    def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        key = id(module)
        if taylor and torch.is_grad_enabled():
            output.retain_grad()
            captured[key] = output
        y = _flat(output.detach(), _channel_dim(module, output))      # B×P×C
        a = y.relu()
        add("a", key, a.sum((0, 1)))
        add("a2", key, a.pow(2).sum((0, 1)))
        add("p", key, y.sum((0, 1)))
        add("p2", key, y.pow(2).sum((0, 1)))
        counts[key] = counts.get(key, 0) + y.shape[0] * y.shape[1]

    handles = [s.register_forward_hook(hook) for s in sites.values()]
    was_training = model.training
    model.eval()
    try:
        for index, images in enumerate(batches):
            if not taylor:
                with torch.no_grad():
                    forward(images)
                continue
            model.zero_grad(set_to_none=True)
            with torch.enable_grad():
                loss(forward(images), index).backward()
            for key, y in captured.items():
                if y.grad is not None:
                    product = _flat((y * y.grad).detach(), _channel_dim(sites[key], y))  # B×P×C
                    add("t", key, product.mean(1).abs().sum(0))
                    # the batch loss is a mean: × B turns its gradient into each image's own
                    add("f", key, (product.sum(1) * y.shape[0]).pow(2).sum(0) / 2)
                    images_seen[key] = images_seen.get(key, 0) + y.shape[0]
            captured.clear()
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)

    def per_group(fn: Callable[[int], torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for g in groups:
            per_site = [fn(id(s)) for s in g.sites if id(s) in counts]
            out.append(torch.stack(per_site).mean(0).float().cpu() if per_site else torch.zeros(g.width))
        return out

    def std(first: str, second: str) -> Callable[[int], torch.Tensor]:
        def fn(key: int) -> torch.Tensor:
            n = max(counts[key], 1)
            mean = sums[first][key] / n
            return (sums[second][key] / n - mean**2).clamp_min(0).sqrt()
        return fn

    result = {"activation": per_group(lambda k: sums["a"][k] / max(counts[k], 1)),
              "std": per_group(std("a", "a2")), "pre_std": per_group(std("p", "p2"))}
    if taylor:
        for name, kind in (("taylor", "t"), ("fisher", "f")):
            result[name] = per_group(lambda k, kind=kind: sums[kind][k] / max(images_seen.get(k, 0), 1)
                                     if k in sums[kind] else torch.zeros_like(sums["a"][k]))
    return result


def activation_scores(model: nn.Module, groups: Sequence[NeuronGroup], batches: Iterable[torch.Tensor],
                      forward: Callable[[torch.Tensor], object], taylor: bool = False,
                      loss: Callable[[object, int], torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Mean post-activation response (default) or the Taylor score per neuron (``response_scores``)."""
    stats = response_scores(model, groups, batches, forward, taylor, loss)
    return stats["taylor" if taylor else "activation"]


def criterion_scores(criterion: str, groups: Sequence[NeuronGroup], stats: dict[str, list[torch.Tensor]] | None
                     ) -> list[torch.Tensor]:
    """Raw scores of ``criterion``; ``stats`` from ``response_scores`` for the data criteria.

    ``bn_scale`` is ``|γ|`` where a batch norm follows the layer and, elsewhere, the standard
    deviation of the pre-activation (which is what ``|γ|`` sets for a batch-normed channel).
    """
    if criterion not in CRITERIA:
        raise InvalidValue(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if criterion == "l1":
        return l1_scores(groups)
    if criterion == "weight_out":
        return outgoing_scores(groups)
    if stats is None:
        raise ValueError(f"criterion {criterion!r} needs response statistics from calibration batches")
    if criterion == "bn_scale":
        return [bn if bn is not None else pre for bn, pre in zip(bn_scores(groups), stats["pre_std"], strict=True)]
    return stats[criterion]


def normalise(scores: Sequence[torch.Tensor], how: str = "mean",
              costs: Sequence[float] | None = None) -> list[torch.Tensor]:
    """Make layers comparable (docs/pruning.md, "Normalisation").

    ``mean``, ``l2``, ``max``: divide each layer's scores by that statistic of the layer; ``none``:
    raw scores; ``flops``: raw score per FLOP a neuron of that layer costs (``costs``, one per layer,
    divided by their mean); ``mean_flops``: the mean-normalised score per FLOP.
    """
    if how not in NORMALIZATIONS:
        raise InvalidValue(f"normalization must be one of {NORMALIZATIONS}, got {how!r}")
    if how in ("flops", "mean_flops"):
        if costs is None:
            raise ValueError(f"normalization {how!r} needs the FLOPs each layer's neurons cost")
        mean_cost = sum(costs) / max(len(costs), 1)
    out = []
    for i, s in enumerate(scores):
        s = s.float()
        if how in ("mean", "mean_flops"):
            s = s / s.mean().clamp_min(1e-12)
        elif how == "l2":
            s = s / s.norm().clamp_min(1e-12)
        elif how == "max":
            s = s / s.max().clamp_min(1e-12)
        if how in ("flops", "mean_flops"):
            s = s / max(costs[i] / max(mean_cost, 1e-12), 1e-12)
        out.append(s)
    return out


def layerwise_keys(scores: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Each neuron's rank within its layer as a fraction of the layer's width: a global ranking of
    these keys takes the same share of every layer (the ``layerwise`` comparison mode)."""
    keys = []
    for s in scores:
        rank = torch.empty(len(s))
        rank[torch.sort(s.float().cpu(), stable=True).indices] = torch.arange(len(s), dtype=torch.float)
        keys.append((rank + 1) / max(len(s), 1))
    return keys


def _order(scores: Sequence[torch.Tensor]) -> list[tuple[int, int]]:
    """``(group, neuron)`` pairs from the lowest score up; ties broken by position (stable sort), so
    every process chooses the same neurons."""
    flat = torch.cat([s.float().cpu() for s in scores])
    owner = torch.cat([torch.full((len(s),), g) for g, s in enumerate(scores)])
    local = torch.cat([torch.arange(len(s)) for s in scores])
    order = torch.sort(flat, stable=True).indices.tolist()
    return [(int(owner[i]), int(local[i])) for i in order]


def select_global(scores: Sequence[torch.Tensor], count: int, min_channels: int = 1) -> list[list[int]]:
    """One ranking over all neurons: the ``count`` lowest, leaving at least ``min_channels`` per layer."""
    room = [max(len(s) - min_channels, 0) for s in scores]
    chosen: list[list[int]] = [[] for _ in scores]
    taken = 0
    for g, i in _order(scores):
        if taken >= count:
            break
        if len(chosen[g]) < room[g]:
            chosen[g].append(i)
            taken += 1
    return chosen


def select_flops(scores: Sequence[torch.Tensor], costs: Sequence[float], budget: float,
                 min_channels: int = 1) -> list[list[int]]:
    """The lowest-ranked neurons whose summed cost (FLOPs per neuron of their layer) first reaches
    ``budget``, leaving at least ``min_channels`` per layer."""
    room = [max(len(s) - min_channels, 0) for s in scores]
    chosen: list[list[int]] = [[] for _ in scores]
    saved = 0.0
    for g, i in _order(scores):
        if saved >= budget:
            break
        if len(chosen[g]) < room[g]:
            chosen[g].append(i)
            saved += costs[g]
    return chosen


def select_layerwise(scores: Sequence[torch.Tensor], ratio: float, min_channels: int = 1) -> list[list[int]]:
    """The same ratio of neurons in every layer; at least one per layer that has room, so that small
    layers also shrink (``layerwise`` mode with ``step_unit="neurons"``)."""
    chosen = []
    for s in scores:
        room = max(len(s) - min_channels, 0)
        k = min(room, max(1, round(ratio * len(s)))) if room else 0
        chosen.append(torch.sort(s.float().cpu(), stable=True).indices[:k].tolist())
    return chosen


def step_count(widths: Sequence[int], ratio: float) -> int:
    """Neurons a global step removes: ``step_ratio`` of those remaining, at least one."""
    return max(1, math.floor(ratio * sum(widths) + 0.5))
