"""Neurons, their coupling and their physical removal, through torch-pruning's dependency graph.

docs/pruning.md: a neuron is an output channel of a convolution or an output unit of a hidden linear
layer. Channels coupled by residual additions, concatenations or batch norms must go together,
so every neuron belongs to a *group* found by torch-pruning's ``DependencyGraph``; the surgery is
torch-pruning's as well. This file adds what the callback needs around it: which layers produce
the network's outputs (never pruned), the pruning history that rebuilds a pruned checkpoint, and
FLOPs and parameter counts from ``torch.utils.flop_counter``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

#: Layers whose outputs are neurons (docs/pruning.md, "Neurons").
PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

ForwardFn = Callable[[nn.Module, torch.Tensor], object]


def _forward(model: nn.Module, x: torch.Tensor) -> object:
    return model(x)


def build_graph(model: nn.Module, example: torch.Tensor, forward_fn: ForwardFn = _forward) -> tp.DependencyGraph:
    """Trace ``model`` on ``example`` (``B×C×H×W``) into torch-pruning's dependency graph.

    Tracing runs in eval mode (batch-norm statistics must not move) and restores the mode after.
    """
    was_training = model.training
    trace = getattr(model, "pruning_trace", contextlib.nullcontext)  # a module may simplify what is traced
    with torch.enable_grad(), trace():
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example, forward_fn=forward_fn,
                                                      verbose=False)
    model.train(was_training)
    return graph


def output_layers(graph: tp.DependencyGraph) -> list[nn.Module]:
    """Convolutions/linears whose outputs reach the network's output through no other such layer.

    These produce the logits (one per head in multi-head networks such as MDAN); pruning one would
    remove a class, so they are never pruned (docs/pruning.md, "Output layers").
    """
    found = []
    for module, node in graph.module2node.items():
        if not isinstance(module, PRUNABLE):
            continue
        stack, seen, reaches = list(node.outputs), set(), not node.outputs
        while stack and not reaches:
            nxt = stack.pop()
            if nxt in seen or isinstance(nxt.module, PRUNABLE):
                continue
            seen.add(nxt)
            reaches = not nxt.outputs
            stack.extend(nxt.outputs)
        if reaches:
            found.append(module)
    return found


@dataclass
class NeuronGroup:
    """Coupled neurons removed together: the output channels of ``layers`` share one index set.

    ``name`` is the root layer's module name, ``width`` its current number of neurons, and
    ``sites`` the modules whose outputs are the neurons' pre-activations (the batch norm right
    after a layer when there is one, else the layer itself), ``consumers`` the layers whose input
    channels are the neurons.
    """

    name: str
    root: nn.Module
    width: int
    layers: list[nn.Module] = field(default_factory=list)
    sites: list[nn.Module] = field(default_factory=list)
    consumers: list[nn.Module] = field(default_factory=list)  # layers that read the neurons (input channels)
    group: tp.Group | None = None                             # torch-pruning's group (for its importances)


def _site(graph: tp.DependencyGraph, layer: nn.Module) -> nn.Module:
    outputs = graph.module2node[layer].outputs
    if len(outputs) == 1 and isinstance(outputs[0].module, nn.modules.batchnorm._BatchNorm):
        return outputs[0].module
    return layer


def neuron_groups(graph: tp.DependencyGraph, ignored: Iterable[nn.Module]) -> list[NeuronGroup]:
    """Every prunable group of the graph, in module order; groups touching ``ignored`` outputs are left out."""
    names = {module: name for name, module in graph.model.named_modules()}
    groups = []
    for group in graph.get_all_groups(ignored_layers=list(ignored), root_module_types=PRUNABLE):
        root = group[0].dep.target.module
        width = graph.get_out_channels(root)
        item = NeuronGroup(names[root], root, width, group=group)
        for dep, idxs in group:
            layer = dep.target.module
            if not isinstance(layer, PRUNABLE) or len(idxs) != width:
                continue
            if graph.is_out_channel_pruning_fn(dep.handler):
                item.layers.append(layer)
                item.sites.append(_site(graph, layer))
            elif graph.is_in_channel_pruning_fn(dep.handler):
                item.consumers.append(layer)
        groups.append(item)
    order = {name: i for i, name in enumerate(names.values())}
    return sorted(groups, key=lambda item: order[item.name])


def prune_groups(graph: tp.DependencyGraph, groups: Sequence[NeuronGroup], selection: Sequence[Sequence[int]]
                 ) -> list[list]:
    """Physically remove ``selection[g]`` (indices into group ``g``'s neurons) with torch-pruning.

    Returns the pruning history entries ``[root name, True, indices]`` of this surgery; replaying
    them on the unpruned network (``replay``) rebuilds the pruned structure.
    """
    start = len(graph.pruning_history())
    for group, idxs in zip(groups, selection, strict=True):
        if len(idxs):
            pruner = graph.get_pruner_of_module(group.root)
            graph.get_pruning_group(group.root, pruner.prune_out_channels, sorted(int(i) for i in idxs)).prune()
    return [[name, bool(out), [int(getattr(i, "idx", i)) for i in idxs]]
            for name, out, idxs in graph.pruning_history()[start:]]


def replay(model: nn.Module, history: Sequence[Sequence], example: torch.Tensor,
           forward_fn: ForwardFn = _forward) -> None:
    """Rebuild a pruned structure on ``model`` from its pruning history (weights are loaded after)."""
    if history:
        graph = build_graph(model, example, forward_fn)
        graph.load_pruning_history([list(entry) for entry in history])


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, example: torch.Tensor, forward_fn: ForwardFn = _forward) -> int:
    """FLOPs of one forward pass on ``example`` (``torch.utils.flop_counter``; a multiply-add is 2)."""
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward_fn(model, example)
    model.train(was_training)
    return int(counter.get_total_flops())


def neuron_costs(model: nn.Module, groups: Sequence[NeuronGroup], example: torch.Tensor,
                 forward_fn: ForwardFn = _forward) -> list[float]:
    """FLOPs one neuron of each group costs: its share of its own layers' FLOPs plus its share of the
    FLOPs of the layers that read it (per-module counts of ``torch.utils.flop_counter``).

    Removing neurons of two adjacent layers saves a little less than the sum of their costs (the
    weights between them are counted twice), so the callback checks a step's real FLOPs after it.
    """
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward_fn(model, example)
    model.train(was_training)
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    prefix = type(model).__name__
    names = {module: name for name, module in model.named_modules()}

    def flops(layer: nn.Module) -> float:
        return float(per_module.get(f"{prefix}.{names[layer]}", 0))

    costs = []
    for g in groups:
        own = sum(flops(layer) / max(_out_width(layer), 1) for layer in g.layers)
        read = sum(flops(layer) / max(_in_width(layer), 1) for layer in g.consumers if layer not in g.layers)
        costs.append(own + read)
    return costs


def _out_width(m: nn.Module) -> int:
    return m.out_channels if isinstance(m, nn.modules.conv._ConvNd) else m.out_features


def _in_width(m: nn.Module) -> int:
    return m.in_channels if isinstance(m, nn.modules.conv._ConvNd) else m.in_features


def widths(model: nn.Module) -> dict[str, int]:
    """Neurons per prunable layer, by module name."""
    return {name: (m.out_channels if isinstance(m, nn.modules.conv._ConvNd) else m.out_features)
            for name, m in model.named_modules() if isinstance(m, PRUNABLE)}


# -- the last accepted network (the stop rule restores it) -------------------------------------------

def _stateful_leaves(model: nn.Module) -> dict[str, nn.Module]:
    """Leaf modules holding parameters or buffers: the only modules a surgery changes."""
    return {name: m for name, m in model.named_modules()
            if name and not list(m.children()) and (m._parameters or m._buffers)}


def snapshot(model: nn.Module) -> dict[str, nn.Module]:
    """Deep copies of the modules a surgery may change, with their weights."""
    return {name: copy.deepcopy(m) for name, m in _stateful_leaves(model).items()}


def restore(model: nn.Module, saved: dict[str, nn.Module]) -> None:
    """Put the snapshot's modules back in place (widths and weights as they were)."""
    device = next(model.parameters()).device
    for name, module in saved.items():
        model.set_submodule(name, copy.deepcopy(module).to(device))
