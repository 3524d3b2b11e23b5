"""The MDAN network as a plain ``nn.Module`` (docs/mdan.md); ``modules/mdan/module.py`` trains it.

Read top to bottom: the Affective Semantic Mapping (which backbone stage serves which affective
level), the local classifier of the top-down branch, the hierarchy-following global head of the
bottom-up branch, and the network that runs the backbone stage by stage, refining each mapped
stage with MCCA and LDCAM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from affectlab.datamodules.hierarchy import Taxonomy
from affectlab.experiments.errors import InvalidValue
from affectlab.modules.backbones import Backbone
from affectlab.modules.emotion import probabilities_from_leaves
from affectlab.modules.mdan.attention import LevelDependentCAM, MultiHeadCrossChannelAttention, display_map

HIERARCHY_MODES = ("sum", "mask")


class AffectiveSemanticMapping:
    """One-to-one map from affective levels (coarse → fine) to backbone stages (shallow → deep).

    docs/mdan.md: by default the K levels take the last K stages, the coarsest level the
    shallowest of them (WEBEmo: layer2→2, layer3→7, layer4→25; FI: layer3→2, layer4→8).

    Args:
        stage_names: the backbone's stages, shallow → deep.
        num_levels: ``K``.
        stages: the stage of each level, coarse → fine; ``None`` for the default.
    """

    def __init__(self, stage_names: Sequence[str], num_levels: int, stages: Sequence[str] | None = None) -> None:
        stage_names = tuple(stage_names)
        if stages is None:
            if num_levels > len(stage_names):
                raise InvalidValue(f"{num_levels} affective levels but only {len(stage_names)} backbone stages")
            stages = stage_names[-num_levels:]
        stages = tuple(stages)
        if len(stages) != num_levels:
            raise InvalidValue(f"stage_mapping {list(stages)} names {len(stages)} stages for {num_levels} levels")
        unknown = [s for s in stages if s not in stage_names]
        if unknown:
            raise InvalidValue(f"unknown stages {unknown}; the backbone has {list(stage_names)}")
        depth = [stage_names.index(s) for s in stages]
        if depth != sorted(set(depth)):
            raise InvalidValue(f"stage_mapping {list(stages)} must go strictly deeper from coarse to fine levels")
        self.stage_names = stage_names
        self.stages = stages

    def level_of(self, stage: str) -> int | None:
        """The affective level (0 = coarsest) a stage serves, or ``None``."""
        return self.stages.index(stage) if stage in self.stages else None

    @property
    def deepest(self) -> str:
        return self.stages[-1]

    def __repr__(self) -> str:
        return f"AffectiveSemanticMapping({dict(enumerate(self.stages, start=1))})"


class LocalClassifier(nn.Module):
    """Top-down branch at one level: a 1×1 conv to ``n_l`` class maps ``M_l``; logits = spatial mean."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.maps = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns class maps ``B×n_l×H×W`` and logits ``B×n_l``."""
        maps = self.maps(features)
        return maps, maps.mean((2, 3))


def mask_by_hierarchy(taxonomy: Taxonomy, probs: list[torch.Tensor]) -> list[torch.Tensor]:
    """``hierarchy_mode: mask`` (docs/mdan.md): each finer level keeps only the children of the
    coarser level's argmax, renormalised, so predictions never violate the hierarchy.

    Args:
        probs: ``B×n_l`` per level, coarse → fine.
    """
    masked = [probs[0]]
    for l in range(1, len(probs)):
        parent = taxonomy.parent_matrix(l).to(probs[l])                       # n_l × n_{l-1}
        allowed = parent[:, masked[-1].argmax(1)].T                           # B×n_l: children of the argmax
        p = probs[l] * allowed
        # A parent whose children all have zero probability falls back to uniform over them.
        total = p.sum(1, keepdim=True)
        uniform = allowed / allowed.sum(1, keepdim=True)
        masked.append(torch.where(total > 0, p / total.clamp(min=1e-12), uniform))
    return masked


class MDANNetwork(nn.Module):
    """Backbone + MCCA + LDCAM + local classifiers + global head (docs/mdan.md).

    At each mapped stage ``l`` (coarse → fine), in order: the backbone stage computes ``F_l`` from
    the refined previous stage; MCCA refines its channels with the previous mapped stage as keys
    and values; LDCAM gates it with ``A_{l-1}``; the local classifier gives ``M_l`` and logits, and
    ``A_l``. The refined ``F_l`` continues through the backbone. The global head pools the deepest
    mapped stage into finest-level logits; coarser levels sum child probabilities.

    Args:
        taxonomy: the affective levels.
        backbone: torchvision name; pretrained: ImageNet weights.
        stage_mapping: stage per level, coarse → fine (``None``: the last K stages).
        heads: MCCA heads. mcca, ldcam, global_branch, local_branch: the ablation switches.
        weights, in_channels: see ``Backbone``.
    """

    def __init__(self, taxonomy: Taxonomy, backbone: str = "resnet101", pretrained: bool = True,
                 stage_mapping: Sequence[str] | None = None, heads: int = 8, mcca: bool = True,
                 ldcam: bool = True, global_branch: bool = True, local_branch: bool = True,
                 weights: str | None = "DEFAULT", in_channels: int = 3) -> None:
        super().__init__()
        if not (global_branch or local_branch):
            raise InvalidValue("MDAN needs at least one of global_branch and local_branch")
        self.taxonomy = taxonomy
        self.backbone = Backbone(backbone, pretrained, weights, in_channels)
        self.mapping = AffectiveSemanticMapping(self.backbone.stage_names, taxonomy.num_levels, stage_mapping)
        # Stages deeper than the finest mapped stage are never run: drop them (no unused parameters under DDP).
        for stage in self.backbone.stage_names[self.backbone.stage_names.index(self.mapping.deepest) + 1:]:
            del self.backbone.stages[stage]
        channels = [self.backbone.channels[s] for s in self.mapping.stages]
        self.use_mcca, self.use_ldcam = mcca, ldcam
        self.global_branch, self.local_branch = global_branch, local_branch
        self.mcca = nn.ModuleList(
            MultiHeadCrossChannelAttention(c, channels[l - 1] if l else None, heads) for l, c in enumerate(channels)
        ) if mcca else None
        # LDCAM needs class maps, so the local classifiers exist whenever either uses them; without
        # local_branch they are trained only through the gate (no local loss, no local predictions).
        self.local = nn.ModuleList(
            LocalClassifier(c, n) for c, n in zip(channels, taxonomy.num_classes, strict=True)
        ) if (local_branch or ldcam) else None
        # One gate per level that has a coarser level above it, each with its own zero-initialised γ.
        self.ldcam = nn.ModuleList(LevelDependentCAM() for _ in channels[1:]) if ldcam else None
        self.global_head = nn.Linear(channels[-1], taxonomy.num_classes[-1]) if global_branch else None
        # While torch-pruning traces the network, MCCA and the LDCAM gate are left out: their
        # channel-to-head views and spatial weighting explode its index mapping, and neither changes
        # which channels are coupled once the mapped stages keep their width (MDAN.pruning_ignored_layers).
        self.tracing_for_pruning = False

    def forward(self, images: torch.Tensor) -> dict[str, Any]:
        """``images``: ``B×3×S×S``. Returns ``global_logits`` (``B×n_K`` or ``None``),
        ``global_probs`` (per level, summed through the hierarchy), ``local_logits`` and ``cams``
        (``B×H_l×W_l`` per level in [0, 1], ``display_map`` of ``A_l``; empty without local classifiers),
        ``stage_features``: each mapped stage's refined features ``B×C_l×H_l×W_l`` by stage name."""
        x, previous, cam = images, None, None                                 # cam: A_{l-1}, B×H×W
        local_logits, cams, refined = [], [], {}
        for stage, module in self.backbone.stages.items():
            x = module(x)                                                     # B×C_s×H_s×W_s
            level = self.mapping.level_of(stage)
            if level is None:
                continue
            if self.mcca is not None and not self.tracing_for_pruning:
                x = self.mcca[level](x, previous)
            if self.ldcam is not None and cam is not None and not self.tracing_for_pruning:
                x = self.ldcam[level - 1].gate(x, cam)
            if self.local is not None:
                maps, logits = self.local[level](x)                           # B×n_l×H×W, B×n_l
                cam = None if self.tracing_for_pruning else LevelDependentCAM.activation_map(maps, logits)
                local_logits.append(logits)
                cams.append(None if cam is None else display_map(cam))       # B×H×W in [0, 1]
            previous = refined[stage] = x
        out: dict[str, Any] = {"local_logits": local_logits, "cams": cams, "features": x, "stage_features": refined}
        if self.global_head is not None:
            logits = self.global_head(F.adaptive_avg_pool2d(x, 1).flatten(1))  # B×n_K
            out["global_logits"] = logits
            out["global_probs"] = probabilities_from_leaves(self.taxonomy, logits.softmax(1))
        else:
            out["global_logits"], out["global_probs"] = None, []
        return out
