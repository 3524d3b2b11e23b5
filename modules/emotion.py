"""What every emotion classifier shares: taxonomy, per-level metrics, optimiser, prediction rows.

``EmotionTask`` is the LightningModule base of the flat baseline (``modules/classifier.py``) and
of MDAN (``modules/mdan/``). A subclass implements ``compute(images) -> dict`` returning at least
``"probs"`` (a list of ``B×n_l`` probabilities, coarse → fine) and ``loss(out, labels)``; this
base turns that into metrics ``{stage}/acc_l{l}`` (level 1 is the coarsest; ``{stage}/acc`` is the
finest level), the hierarchy-violation rate, per-class accuracy and a finest-level confusion
matrix, and into prediction rows for ``predictions.csv``.

Image batches may arrive as uint8 (the VEA DataModules' workers ship them so): the batch-transfer
hook standardises them once, on the device, with the DataModule's ``input_normalization``
(``datamodules/crops.py``, ``normalize_images``); float batches pass through untouched.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from functools import partial
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from affectlab.datamodules.crops import IMAGENET_MEAN, IMAGENET_STD, normalize_images
from affectlab.datamodules.hierarchy import Taxonomy
from affectlab.modules.backbones import check_backbone
from affectlab.modules.empty_batch import distributed, zero_loss

TaxonomySpec = dict[str, Any] | str | None
#: Data values the CLI links into every model (experiments/cli.py); recorded even where unused.
RECORDED_LINKS = frozenset({"image_size", "class_weights", "attributes", "in_channels"})

# The batch-transfer hook below is meant to run with a DataModule attached; Lightning would say so at every fit.
warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer` in `LightningModule` but have passed")


class LevelMetrics(nn.Module):
    """Top-1 and per-class accuracy at every level, plus the finest level's confusion matrix."""

    def __init__(self, taxonomy: Taxonomy, prefix: str = "") -> None:
        super().__init__()
        self.taxonomy = taxonomy
        self.prefix = prefix
        self.top1 = nn.ModuleList(MulticlassAccuracy(n, average="micro") for n in taxonomy.num_classes)
        self.per_class = nn.ModuleList(MulticlassAccuracy(n, average=None) for n in taxonomy.num_classes)
        self.confusion = MulticlassConfusionMatrix(taxonomy.num_classes[-1])

    def update(self, probs: list[torch.Tensor], labels: list[torch.Tensor]) -> None:
        for l, (p, y) in enumerate(zip(probs, labels, strict=True)):
            self.top1[l].update(p, y)
            self.per_class[l].update(p, y)
        self.confusion.update(probs[-1], labels[-1])

    def compute(self) -> dict[str, torch.Tensor]:
        out = {}
        for l in range(self.taxonomy.num_levels):
            out[f"{self.prefix}acc_l{l + 1}"] = self.top1[l].compute()
            for k, acc in enumerate(self.per_class[l].compute()):
                out[f"{self.prefix}class_acc_l{l + 1}/{self.taxonomy.levels[l][k]}"] = acc
        out[f"{self.prefix}acc"] = out[f"{self.prefix}acc_l{self.taxonomy.num_levels}"]
        return out

    def reset(self) -> None:
        for metric in [*self.top1, *self.per_class, self.confusion]:
            metric.reset()


def probabilities_from_leaves(taxonomy: Taxonomy, leaf_probs: torch.Tensor) -> list[torch.Tensor]:
    """Coarse probabilities by summing children (docs/mdan.md, bottom-up): ``p_l = p_{l+1} P_{l+1→l}``."""
    probs = [leaf_probs]
    for l in range(taxonomy.num_levels - 1, 0, -1):
        probs.insert(0, probs[0] @ taxonomy.parent_matrix(l).to(leaf_probs))
    return probs


def _as_callable(spec: Any) -> Any:
    """A callable as given, or built from the ``class_path``/``init_args`` form checkpoints record.

    So ``Module(**checkpoint["hyper_parameters"])`` by hand gets the optimiser the CLI configured.
    """
    if not isinstance(spec, dict):
        return spec
    module, name = str(spec["class_path"]).rsplit(".", 1)
    return partial(getattr(importlib.import_module(module), name), **(spec.get("init_args") or {}))


class EmotionTask(L.LightningModule):
    """Base LightningModule of the emotion classifiers.

    The optimiser and its schedule are defined here once for every subclass, the LightningCLI way:
    ``optimizer`` and ``lr_scheduler`` are callables (``class_path``/``init_args`` in a config,
    e.g. ``torch.optim.SGD`` with ``lr``, ``momentum``, ``weight_decay``; ``torch.optim.lr_scheduler.StepLR``
    with ``step_size``, ``gamma``). The optimiser receives two parameter groups, ``heads`` (the new
    layers) and ``backbone`` (the rest), and the backbone's learning rate is multiplied by
    ``backbone_lr_mult``.

    Args:
        taxonomy: the emotion hierarchy (linked from the DataModule by the CLI; a built-in name such
            as ``"mikels"`` or its dict form when the module is built by hand).
        optimizer: builds the optimiser from the parameter groups; ``None``: ``default_optimizer``
            (SGD, lr 1e-3, momentum 0.9, weight decay 1e-4: the VEA lineage, docs/mdan.md).
        lr_scheduler: builds the learning-rate schedule (stepped every epoch) from the optimiser;
            ``None``: a constant learning rate.
        backbone_lr_mult: the backbone's learning-rate factor (0.1 in the VEA lineage).
    """

    @classmethod
    def check_arguments(cls, args: Mapping[str, Any]) -> None:
        """Refuse an unknown backbone while the command line is parsed, before anything is built (``experiments/cli.py``)."""
        if isinstance(args.get("backbone"), str):
            check_backbone(args["backbone"])

    def __init__(
        self,
        taxonomy: TaxonomySpec = "mikels",
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        backbone_lr_mult: float = 0.1,
        **recorded: Any,
    ) -> None:
        # A checkpoint's hyperparameters also hold what the CLI recorded beside the arguments (its
        # class path, linked data values this model has no use for); load_from_checkpoint passes them
        # all to subclasses that forward **kwargs. Anything else is a mistake.
        unknown = sorted(k for k in recorded if not k.startswith("_") and k not in RECORDED_LINKS)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments: {', '.join(unknown)}")
        super().__init__()
        self.taxonomy = Taxonomy.from_spec(taxonomy or "mikels")
        # The linked taxonomy is stored as plain data so load_from_checkpoint needs no argument.
        self.save_hyperparameters(ignore=["taxonomy"])
        self.hparams["taxonomy"] = self.taxonomy.to_dict()
        # Callables built by hand (a class, a lambda) are not data: checkpoints keep the CLI's
        # class_path/init_args form only.
        for key in ("optimizer", "lr_scheduler"):
            if callable(self.hparams.get(key)):
                del self.hparams[key]
                self._hparams_initial.pop(key, None)
        self.optimizer_factory = _as_callable(optimizer) or self.default_optimizer
        self.scheduler_factory = _as_callable(lr_scheduler)
        self.metrics = nn.ModuleDict({stage: LevelMetrics(self.taxonomy, f"{stage}/") for stage in ("val", "test")})
        self.violations: dict[str, list[torch.Tensor]] = {"val": [], "test": []}

    # -- to implement ---------------------------------------------------------------------------------
    def compute(self, images: torch.Tensor) -> dict[str, Any]:
        """Network outputs; must hold ``"probs"``: a list of ``B×n_l`` tensors, coarse → fine."""
        raise NotImplementedError

    def loss(self, out: dict[str, Any], labels: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Named loss terms; ``"loss"`` is the total that is optimised."""
        raise NotImplementedError

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the new (non-pretrained) layers; the rest is treated as backbone."""
        raise NotImplementedError

    def feature_trunk(self) -> nn.Sequential:
        """The convolutional trunk, image → last feature map, whose filters feature map inversion shows."""
        raise NotImplementedError(f"{type(self).__name__} does not expose a convolutional trunk")

    # -- input ----------------------------------------------------------------------------------------
    def input_normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and std uint8 images are standardised with: the attached DataModule's, else ImageNet's."""
        trainer = self._trainer
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        return getattr(datamodule, "input_normalization", None) or (IMAGENET_MEAN, IMAGENET_STD)

    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images → standardised float32 (channels-last on CUDA); float images unchanged."""
        mean, std = self.input_normalization()
        return normalize_images(images, mean, std)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Standardise a uint8 image batch where it now is (the GPU in training), exactly once."""
        if isinstance(batch, dict) and isinstance(batch.get("image"), torch.Tensor):
            batch["image"] = self.prepare_images(batch["image"])
        return batch

    # -- steps ----------------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Probabilities per level, coarse → fine (each ``B×n_l``); uint8 images are standardised first."""
        return self.compute(self.prepare_images(images))["probs"]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if batch["image"].numel() == 0:
            return self.empty_step()
        labels = self.taxonomy.labels_at_levels(batch["label"])
        out = self.compute(batch["image"])
        losses = self.loss(out, labels)
        batch_size = len(batch["label"])
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in losses.items() if k != "loss"}, batch_size=batch_size)
        return losses["loss"]

    def empty_step(self) -> torch.Tensor | None:
        """A training batch whose every file was unreadable: it contributes nothing to the gradient.

        On one process the step is skipped (``None``). Under DDP every rank must take part in the
        gradient all-reduce, or the others wait for ever: this rank returns a zero loss that
        reaches every trainable parameter, so its gradient is exactly zero, the optimisers step
        in step on every rank and the update is the other ranks' gradient (averaged over all
        ranks, as DDP always does). With SyncBatchNorm the forward pass gathers statistics from
        every rank too, so the network also runs on an empty batch (whose statistics count zero).
        """
        if not distributed(self):
            return None
        outputs = []
        if any(isinstance(m, nn.SyncBatchNorm) for m in self.modules()):
            data = self.trainer.datamodule
            size, channels = getattr(data, "image_size", 224), getattr(data, "num_channels", 3)
            outputs = self.compute(torch.zeros(0, channels, size, size, device=self.device))["probs"]
        return zero_loss(self, *outputs)

    def _eval_step(self, stage: str, batch: dict[str, Any]) -> dict[str, Any] | None:
        if batch["image"].numel() == 0:
            return None
        labels = self.taxonomy.labels_at_levels(batch["label"])
        out = self.compute(batch["image"])
        losses = self.loss(out, labels)
        self.log(f"{stage}/loss", losses["loss"], batch_size=len(batch["label"]), sync_dist=True)
        self.metrics[stage].update(out["probs"], labels)
        self.violations[stage].append(self.taxonomy.violations([p.argmax(1) for p in out["probs"]]))
        return out

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any] | None:
        return self._eval_step("val", batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any] | None:
        return self._eval_step("test", batch)

    def _eval_epoch_end(self, stage: str) -> None:
        metrics = self.metrics[stage]
        values = metrics.compute()
        self.log(f"{stage}/acc", values.pop(f"{stage}/acc"), prog_bar=True)
        self.log_dict(values)
        if self.violations[stage]:
            violated = torch.cat(self.violations[stage]).float()
            total = self.all_gather(torch.stack([violated.sum(), violated.new_tensor(len(violated))]))
            total = total.reshape(-1, 2).sum(0)
            self.log(f"{stage}/violation_rate", total[0] / total[1].clamp(min=1))
        metrics.reset()
        self.violations[stage] = []

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """One row per image: the path, the predicted class and probabilities at every level."""
        if batch["image"].numel() == 0:
            return []
        probs = self.compute(batch["image"])["probs"]
        rows = []
        for i, path in enumerate(batch["path"]):
            row: dict[str, Any] = {"path": path}
            for l, p in enumerate(probs):
                names = self.taxonomy.levels[l]
                level = self.taxonomy.level_names[l]
                row[f"pred_{level}"] = names[int(p[i].argmax())]
                row.update({f"p_{level}_{name}": float(p[i, k]) for k, name in enumerate(names)})
            rows.append(row)
        return rows

    # -- pruned checkpoints (docs/pruning.md) -----------------------------------------------------------------
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Rebuild the thinner network of a pruned checkpoint before its weights load."""
        from affectlab.callbacks.pruning import restore_pruned_structure

        restore_pruned_structure(self, checkpoint)

    # -- optimisation (docs/mdan.md: SGD 0.9, backbone lr/10, step decay) -----------------------------------
    @staticmethod
    def default_optimizer(params: Any) -> torch.optim.Optimizer:
        """SGD with momentum 0.9, lr 1e-3 and weight decay 1e-4 (docs/mdan.md)."""
        return torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=1e-4)

    def configure_optimizers(self) -> Any:
        head = self.head_parameters()
        head_ids = {id(p) for p in head}
        backbone = [p for p in self.parameters() if id(p) not in head_ids and p.requires_grad]
        groups = [{"params": [p for p in head if p.requires_grad], "name": "heads"}]
        if backbone:
            groups.append({"params": backbone, "name": "backbone"})
        opt = self.optimizer_factory(groups)
        for group in opt.param_groups:
            if group.get("name") == "backbone":
                group["lr"] *= self.hparams.backbone_lr_mult
        if self.scheduler_factory is None:
            return opt
        scheduler = self.scheduler_factory(opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
