"""MDAN as a LightningModule: multi-level losses, global/local/fused metrics (docs/mdan.md).

The network lives in ``modules/mdan/network.py``; this file holds the method around it: which
prediction is reported, the loss ``Σ_l w_l·NLL(log p_l, y_l) + λ·Σ_l CE(logits_l, y_l)``, the
extra validation metrics of the local and fused predictions, and the optimiser inherited from
``EmotionTask`` (SGD 0.9, backbone at a tenth of the heads' learning rate, step decay).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics.classification import MulticlassAccuracy

from affectlab.experiments.errors import InvalidValue
from affectlab.modules.backbones import weights_name
from affectlab.modules.emotion import EmotionTask, TaxonomySpec
from affectlab.modules.mdan.network import HIERARCHY_MODES, MDANNetwork, mask_by_hierarchy


def log_probabilities_from_leaves(taxonomy, leaf_logits: torch.Tensor) -> list[torch.Tensor]:
    """``log p_l`` per level, coarse → fine, from finest-level logits ``B×n_K``.

    The same sums as ``probabilities_from_leaves`` taken in log space
    (``log p_parent = logsumexp_children log p_child``), so the NLL stays finite and stable.
    """
    log_probs = [leaf_logits.log_softmax(1)]
    for l in range(taxonomy.num_levels - 1, 0, -1):
        parent = taxonomy.parent_matrix(l).to(leaf_logits)                    # n_l × n_{l-1}
        blocked = (1 - parent) * -1e4                                         # log 0 ≈ -1e4 for non-children
        log_probs.insert(0, torch.logsumexp(log_probs[0][:, :, None] + blocked[None], dim=1))
    return log_probs


class MDAN(EmotionTask):
    """Multi-level Dependent Attention Network (Xu et al., CVPR 2022), as reconstructed in docs/mdan.md.

    Args:
        taxonomy: the affective levels, linked from the DataModule (1, 2 or 3 levels).
        backbone: torchvision trunk (``resnet101`` by default, ``resnet50`` the cheaper option).
        pretrained: start from ImageNet weights.
        weights: which torchvision weights when ``pretrained`` (``IMAGENET1K_V1``, the VEA lineage's;
            ``DEFAULT``, torchvision's newest; ``none``). The checkpoint and the logger record the
            weights' own name, never ``DEFAULT``.
        in_channels: image channels (linked from ``data.num_channels``; 1 for Fashion-MNIST).
        stage_mapping: Affective Semantic Mapping, the stage of each level coarse → fine
            (``None``: the last K stages, e.g. ``[layer3, layer4]`` for FI).
        heads: heads of MCCA.
        mcca: Multi-head Cross Channel Attention at each mapped stage.
        ldcam: Level-dependent CAM gating of each finer level by the coarser one.
        global_branch: the bottom-up head at the finest level (coarser levels by the hierarchy).
        local_branch: the top-down local classifiers' loss and predictions.
        hierarchy_mode: ``sum`` (coarse = sum of children) or ``mask`` (finer predictions restricted
            to the children of the coarser argmax; never violates the hierarchy).
        fuse: report the mean of the global and local probabilities instead of the global ones.
        level_weights: ``w_l`` of the global NLL per level (default all 1).
        lambda_local: ``λ``, the weight of the local cross-entropies.
        **kwargs: ``optimizer``, ``lr_scheduler``, ``backbone_lr_mult`` of ``EmotionTask``.
    """

    def __init__(
        self,
        taxonomy: TaxonomySpec = "mikels",
        backbone: str = "resnet101",
        pretrained: bool = True,
        weights: str | None = "IMAGENET1K_V1",
        in_channels: int = 3,
        stage_mapping: list[str] | None = None,
        heads: int = 8,
        mcca: bool = True,
        ldcam: bool = True,
        global_branch: bool = True,
        local_branch: bool = True,
        hierarchy_mode: str = "sum",
        fuse: bool = False,
        level_weights: list[float] | None = None,
        lambda_local: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(taxonomy, **kwargs)
        if hierarchy_mode not in HIERARCHY_MODES:
            raise InvalidValue(f"hierarchy_mode must be one of {HIERARCHY_MODES}, got {hierarchy_mode!r}")
        levels = self.taxonomy.num_levels
        if level_weights is not None and len(level_weights) != levels:
            raise InvalidValue(f"level_weights has {len(level_weights)} entries for {levels} levels")
        self.level_weights = list(level_weights) if level_weights is not None else [1.0] * levels
        # The weights actually used, by name (DEFAULT moves between torchvision releases).
        self.hparams["weights"] = weights_name(backbone, weights) if pretrained else None
        self.net = MDANNetwork(self.taxonomy, backbone, pretrained, stage_mapping, heads, mcca, ldcam,
                               global_branch, local_branch, weights=weights, in_channels=in_channels)
        # Extra validation/test accuracies per level of each branch and of the fusion (docs/mdan.md, Metrics).
        self.branch_names = [b for b, on in (("global", global_branch), ("local", local_branch),
                                             ("fused", global_branch and local_branch)) if on]
        self.branch_metrics = nn.ModuleDict({
            f"{stage}_{branch}": nn.ModuleList(MulticlassAccuracy(n, average="micro") for n in self.taxonomy.num_classes)
            for stage in ("val", "test") for branch in self.branch_names
        })

    # -- network --------------------------------------------------------------------------------------
    def compute(self, images: torch.Tensor) -> dict[str, Any]:
        """Outputs for ``images`` ``B×3×S×S``.

        ``probs``: the reported prediction per level (``B×n_l``, coarse → fine): global, or fused,
        masked in ``mask`` mode; ``global_probs``: the bottom-up probabilities summed through the
        hierarchy; ``local_probs``/``local_logits``: the top-down classifiers'; ``fused_probs``;
        ``cams``: LDCAM maps ``B×H_l×W_l`` per level.
        """
        out = self.net(images)
        hp = self.hparams
        local_probs = [z.softmax(1) for z in out["local_logits"]] if hp.local_branch else []
        fused = [(g + p) / 2 for g, p in zip(out["global_probs"], local_probs, strict=True)] \
            if (hp.global_branch and hp.local_branch) else []
        if hp.fuse and fused:
            probs = fused
        else:
            probs = out["global_probs"] if hp.global_branch else local_probs
        if hp.hierarchy_mode == "mask":
            probs = mask_by_hierarchy(self.taxonomy, probs)
        return {**out, "probs": probs, "local_probs": local_probs, "fused_probs": fused}

    def loss(self, out: dict[str, Any], labels: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """``Σ_l w_l·NLL(log p_l, y_l) + λ·Σ_l CE(logits_l, y_l)`` (docs/mdan.md), with each term logged."""
        terms: dict[str, torch.Tensor] = {}
        total = 0.0
        if self.hparams.global_branch:
            for l, log_p in enumerate(log_probabilities_from_leaves(self.taxonomy, out["global_logits"])):
                terms[f"nll_global_l{l + 1}"] = F.nll_loss(log_p, labels[l])
                total = total + self.level_weights[l] * terms[f"nll_global_l{l + 1}"]
        if self.hparams.local_branch:
            for l, logits in enumerate(out["local_logits"]):
                terms[f"ce_local_l{l + 1}"] = F.cross_entropy(logits, labels[l])
                total = total + self.hparams.lambda_local * terms[f"ce_local_l{l + 1}"]
        return {"loss": total, **terms}

    def head_parameters(self) -> list[nn.Parameter]:
        """Everything but the backbone: MCCA, local classifiers, global head (lr × 1/backbone_lr_mult)."""
        return [p for name, p in self.net.named_parameters() if not name.startswith("backbone.")]

    def feature_trunk(self) -> nn.Sequential:
        """The backbone MDAN attends over (feature map inversion shows what its filters extract)."""
        return self.net.backbone.sequential()

    # -- gradual global pruning (docs/pruning.md) ----------------------------------------------------------------
    def pruning_ignored_layers(self) -> list[nn.Module]:
        """Output layers (local class maps, global head) and the layers that set each mapped stage's width.

        MCCA projects the previous mapped stage to the current one with grouped convolutions, so the
        widths of the mapped stages stay as they are; every other backbone neuron can go.
        """
        net = self.net
        layers: list[nn.Module] = [net.global_head] if net.global_head is not None else []
        for local in net.local or []:
            layers += [m for m in local.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
        for stage in net.mapping.stages:
            convs = [m for m in net.backbone.stages[stage].modules() if isinstance(m, nn.Conv2d)]
            layers.append(convs[-1])  # the stage's output channels (coupled through its residuals)
        return layers

    @contextmanager
    def pruning_trace(self) -> Iterator[None]:
        """Trace for torch-pruning without MCCA and the LDCAM gate (see ``MDANNetwork``)."""
        self.net.tracing_for_pruning = True
        try:
            yield
        finally:
            self.net.tracing_for_pruning = False

    # -- branch metrics (val/acc_l{l}_global, _local, _fused) -----------------------------------------------
    def _eval_step(self, stage: str, batch: dict[str, Any]) -> dict[str, Any] | None:
        out = super()._eval_step(stage, batch)
        if out is not None:
            labels = self.taxonomy.labels_at_levels(batch["label"])
            for branch in self.branch_names:
                for metric, p, y in zip(self.branch_metrics[f"{stage}_{branch}"], out[f"{branch}_probs"], labels,
                                        strict=True):
                    metric.update(p, y)
        return out

    def _eval_epoch_end(self, stage: str) -> None:
        super()._eval_epoch_end(stage)
        for branch in self.branch_names:
            for l, metric in enumerate(self.branch_metrics[f"{stage}_{branch}"]):
                if metric.update_called:
                    self.log(f"{stage}/acc_l{l + 1}_{branch}", metric.compute())
                metric.reset()
