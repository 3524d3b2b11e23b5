"""Gradually global pruning (docs/pruning.md): a Lightning callback that makes any module thinner.

Lightning's ``ModelPruning`` masks weights, so nothing gets faster. ``GradualGlobalPruning``
removes neurons: after ``warmup_epochs`` it ranks every remaining neuron of the network in one
global list (scores made comparable across layers by a normalisation), physically removes the
lowest-ranked neurons worth ``step_ratio`` of the remaining FLOPs (or neurons) through
torch-pruning's dependency graph, rebuilds the optimiser, LR scheduler and DDP wrapper over the new
parameters, fine-tunes ``finetune_epochs`` and validates. When the monitored metric falls more than
``max_drop`` below the unpruned baseline, the last accepted network is restored and the step is
halved and retried, down to ``min_step_ratio``, before pruning stops; a FLOPs or parameter target
also ends pruning.

Checkpoints carry the pruning history (``checkpoint["pruning"]``); a module calls
``restore_pruned_structure`` in ``on_load_checkpoint`` (``EmotionTask`` does) so that resuming
with ``ckpt_path`` and ``load_from_checkpoint`` rebuild the thinner network before its weights load.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from affectlab.callbacks import pruning_graph as graph_ops
from affectlab.callbacks.pruning_importance import (
    CRITERIA,
    DATA_CRITERIA,
    GRADIENT_CRITERIA,
    MODES,
    NORMALIZATIONS,
    STEP_UNITS,
    criterion_scores,
    l1_scores,
    layerwise_keys,
    normalise,
    response_scores,
    select_flops,
    select_global,
    select_layerwise,
    step_count,
)
from affectlab.callbacks.pruning_report import PruningReport, export_network
from affectlab.experiments.errors import InvalidValue

log = logging.getLogger(__name__)


def restore_pruned_structure(module: nn.Module, checkpoint: dict[str, Any]) -> None:
    """Rebuild the pruned widths stored in ``checkpoint`` on a freshly built ``module``.

    Replays torch-pruning's history (the neurons removed at every accepted step) on the module,
    unless its parameters already have the checkpoint's shapes (resuming in the same process).
    """
    state = checkpoint.get("pruning")
    weights = checkpoint.get("state_dict", {})
    if not state or not state.get("history"):
        return
    current = module.state_dict()
    if all(k not in current or current[k].shape == v.shape for k, v in weights.items()):
        return
    example = torch.zeros(state["example_input_size"], device=next(module.parameters()).device)
    graph_ops.replay(module, state["history"], example)


def thin(model: nn.Module, example: torch.Tensor, target_flops_ratio: float, step_ratio: float = 0.05,
         normalization: str = "mean", min_channels: int = 1, ignored: list[nn.Module] | None = None) -> list[dict]:
    """Data-free gradual global pruning by L1 weight norm until FLOPs ≤ ``target_flops_ratio``.

    The callback's steps without fine-tuning (what ``benchmarks/pruning_speedup.py`` measures): one
    global ranking of normalised L1 scores per step, torch-pruning surgery. Returns one row per step.
    """
    base = graph_ops.count_flops(model, example)
    rows, flops = [], base
    while flops / base > target_flops_ratio:
        graph = graph_ops.build_graph(model, example)
        groups = graph_ops.neuron_groups(graph, [*graph_ops.output_layers(graph), *(ignored or [])])
        scores = normalise(l1_scores(groups), normalization)
        chosen = select_global(scores, step_count([len(s) for s in scores], step_ratio), min_channels)
        if not any(chosen):
            break
        graph_ops.prune_groups(graph, groups, chosen)
        flops = graph_ops.count_flops(model, example)
        rows.append({"step": len(rows) + 1, "flops_ratio": flops / base, "params": graph_ops.count_params(model)})
    return rows


def _images(batch: Any) -> torch.Tensor:
    if isinstance(batch, dict):
        return batch["image"]
    if isinstance(batch, (list, tuple)):
        return batch[0]
    return batch


def _validation_size(trainer: L.Trainer | None) -> int:
    """Validation images behind the monitored metric (for ``max_drop_unit="se"``)."""
    if trainer is None:
        raise InvalidValue("max_drop_unit='se' needs the trainer's validation set")
    loaders = trainer.val_dataloaders
    loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
    total = 0
    for i, loader in enumerate(loaders):
        size = len(loader.dataset) if hasattr(getattr(loader, "dataset", None), "__len__") else 0
        limit = trainer.num_val_batches[i] if i < len(trainer.num_val_batches) else None
        if limit is not None and limit != float("inf") and getattr(loader, "batch_size", None):
            seen = int(limit) * loader.batch_size * max(trainer.world_size, 1)
            size = min(size, seen) if size else seen
        total += size
    if not total:
        raise InvalidValue("max_drop_unit='se' could not count the validation images; use max_drop_unit='absolute'")
    return total


def _task_loss(module: nn.Module, batch: Any) -> torch.Tensor:
    """The training loss on ``batch`` for the Taylor criterion (``pruning_loss`` or EmotionTask's loss)."""
    if hasattr(module, "pruning_loss"):
        return module.pruning_loss(batch)
    if hasattr(module, "compute") and hasattr(module, "taxonomy"):
        labels = module.taxonomy.labels_at_levels(batch["label"])
        return module.loss(module.compute(batch["image"]), labels)["loss"]
    raise InvalidValue("criteria 'taylor' and 'fisher' need a loss: define pruning_loss(batch) on the LightningModule")



def _trial_copy(module: nn.Module) -> nn.Module | None:
    """A copy of the module to try a step on, without its trainer; ``None`` where it cannot be copied.

    Under DDP the module cannot be deep-copied (the wrapper's and the metrics' distributed state come
    along): a FLOPs step then relies on the per-neuron cost estimate alone.
    """
    trainer = getattr(module, "_trainer", None)
    module._trainer = None
    try:
        return copy.deepcopy(module)
    except Exception:  # noqa: BLE001 — any failure to copy means: no trial, use the estimate
        return None
    finally:
        module._trainer = trainer

class GradualGlobalPruning(Callback):
    """Gradually global neuron pruning under a performance bound (docs/pruning.md).

    Args:
        criterion: neuron importance (docs/pruning.md, "Importance"): ``fisher`` (default: the
            second-order loss-rise estimate ``½ mean_n (Σ activation × gradient_n)²``, one backward
            pass per calibration batch), ``weight_out`` (L1 norm of the outgoing weights), ``std``
            (standard deviation of the post-ReLU response), ``taylor`` (first-order Taylor
            ``|mean(activation × gradient)|``), ``activation`` (mean
            post-ReLU response), ``bn_scale`` (batch-norm ``|γ|``;
            the pre-activation's standard deviation where no batch norm follows) or ``l1`` (L1 norm of
            the incoming weights).
        normalization: making layers comparable — ``flops`` (default: raw score per FLOP a neuron
            costs, so a FLOPs budget is spent where it loses least), divide by the layer's
            ``mean``, ``l2`` norm or ``max``; ``none`` (raw; Fisher scores are loss rises); or
            ``mean_flops`` (mean-normalised score per FLOP).
        mode: ``global`` (one ranking), ``layerwise`` (the same share of every layer),
            ``global_unnormalised`` (one ranking of raw scores) or ``one_shot`` (everything at the
            first step, as much as the FLOPs/parameter target asks).
        step_ratio: share of the remaining FLOPs (``step_unit="flops"``, default) or neurons
            (``"neurons"``) a step removes.
        step_unit: ``flops`` or ``neurons``.
        min_step_ratio: a rejected step is halved and retried while it stays at or above this.
        min_channels: neurons every layer keeps.
        ignored_layers: module names never pruned (with everything under them). Output layers are
            always ignored: those a module lists in ``pruning_ignored_layers()`` and those found
            automatically (layers whose outputs reach the network output through no other layer).
        warmup_epochs: epochs trained before the baseline is measured and pruning starts; 0 prunes
            at the first epoch (a trained network), with the baseline given as ``baseline`` (or
            ``max_drop=None``).
        baseline: the monitored metric of the network as it enters fit (with ``warmup_epochs=0``).
        finetune_epochs: fine-tuning epochs between two steps.
        finetune_lr: learning rate of every fine-tuning (each parameter group scaled alike); ``None``:
            the rate ``configure_optimizers`` sets, its schedule restarting at every surgery.
        max_drop: largest accepted fall of ``monitor`` below the unpruned baseline; ``None``
            disables the stop rule.
        max_drop_unit: ``absolute`` (the metric's units: 0.01 is one point of ``val/acc``) or ``se``
            (standard errors of an accuracy on the validation set, ``sqrt(p(1-p)/n)``).
        monitor: the validation metric the stop rule watches.
        monitor_mode: ``max`` when higher is better, else ``min``.
        target_flops_ratio: stop pruning once FLOPs ≤ this fraction of the unpruned network's.
        target_params_ratio: stop pruning once parameters ≤ this fraction.
        calibration_batches: training batches used to score neurons.
        example_input_size: input shape used for tracing and FLOPs (``[1, C, H, W]``); by default
            ``[1, data.num_channels or 3, data.image_size, data.image_size]`` or a training batch's.
        export: write the pruned network (weights with structure, ``torch.export`` program) at the end.
    """

    def __init__(
        self,
        criterion: str = "fisher",
        normalization: str = "flops",
        mode: str = "global",
        step_ratio: float = 0.1,
        step_unit: str = "flops",
        min_step_ratio: float = 0.0125,
        min_channels: int = 1,
        ignored_layers: list[str] | None = None,
        warmup_epochs: int = 1,
        baseline: float | None = None,
        finetune_epochs: int = 1,
        finetune_lr: float | None = None,
        max_drop: float | None = 2.0,
        max_drop_unit: str = "se",
        monitor: str = "val/acc",
        monitor_mode: str = "max",
        target_flops_ratio: float | None = None,
        target_params_ratio: float | None = None,
        calibration_batches: int = 4,
        example_input_size: list[int] | None = None,
        export: bool = True,
    ) -> None:
        if criterion not in CRITERIA:
            raise InvalidValue(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        if mode not in MODES:
            raise InvalidValue(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "one_shot" and target_flops_ratio is None and target_params_ratio is None:
            raise InvalidValue("mode='one_shot' prunes to a budget: set target_flops_ratio or target_params_ratio")
        if not 0 < step_ratio < 1:
            raise InvalidValue(f"step_ratio must lie in (0, 1), got {step_ratio}")
        if step_unit not in STEP_UNITS:
            raise InvalidValue(f"step_unit must be one of {STEP_UNITS}, got {step_unit!r}")
        if not 0 < min_step_ratio <= step_ratio:
            raise InvalidValue(f"min_step_ratio must lie in (0, step_ratio], got {min_step_ratio}")
        if max_drop_unit not in ("absolute", "se"):
            raise InvalidValue(f"max_drop_unit must be 'absolute' or 'se', got {max_drop_unit!r}")
        if warmup_epochs < 0 or finetune_epochs < 1:
            raise InvalidValue("warmup_epochs must be ≥ 0 and finetune_epochs ≥ 1")
        if warmup_epochs == 0 and baseline is None and max_drop is not None:
            raise InvalidValue("warmup_epochs=0 prunes before any validation: give baseline= or set max_drop=None")
        self.criterion = criterion
        self.normalization = "none" if mode == "global_unnormalised" else normalization
        if self.normalization not in NORMALIZATIONS:
            raise InvalidValue(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.mode = mode
        self.step_ratio = step_ratio
        self.step_unit = step_unit
        self.min_step_ratio = min_step_ratio
        self.min_channels = min_channels
        self.ignored_layers = list(ignored_layers or [])
        self.warmup_epochs = warmup_epochs
        self.finetune_epochs = finetune_epochs
        self.finetune_lr = finetune_lr
        self.max_drop = max_drop
        self.max_drop_unit = max_drop_unit
        self.monitor = monitor
        self.monitor_mode = monitor_mode
        self.target_flops_ratio = target_flops_ratio
        self.target_params_ratio = target_params_ratio
        self.calibration_batches = calibration_batches
        self.example_input_size = list(example_input_size) if example_input_size else None
        self.export = export
        # State kept in checkpoints (state_dict / load_state_dict).
        self.step = 0                      # surgeries done
        self.baseline: float | None = baseline  # monitored metric of the unpruned network
        self.ratio = step_ratio             # the current step size (halved by each rejection)
        self.history: list[list] = []       # torch-pruning history of the current network
        self.accepted_len = 0               # history length of the last accepted network
        self.pending = False                # a surgery awaits its validation
        self.surgery_due = False            # a surgery runs at the next training epoch start
        self.eval_epoch = -1                # epoch whose validation judges the pending surgery
        self.done = False
        self.reason = ""
        self.base_flops = 0
        self.base_params = 0
        self.rows: list[dict[str, Any]] = []
        self._accepted: dict[str, nn.Module] | None = None
        self.report: PruningReport | None = None

    # -- checkpoint state ----------------------------------------------------------------------------------
    _STATE = ("step", "baseline", "ratio", "history", "accepted_len", "pending", "surgery_due", "eval_epoch", "done",
              "reason", "base_flops", "base_params", "rows", "example_input_size")

    def state_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self._STATE}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for key in self._STATE:
            if key in state_dict:
                setattr(self, key, state_dict[key])

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        # Read by restore_pruned_structure before the weights load (resume and load_from_checkpoint).
        if self.example_input_size:
            checkpoint["pruning"] = {"history": self.history, "example_input_size": self.example_input_size,
                                     "widths": graph_ops.widths(pl_module)}

    # -- set-up ---------------------------------------------------------------------------------------------
    def _example(self, trainer: L.Trainer, pl_module: L.LightningModule) -> torch.Tensor:
        if self.example_input_size is None:
            data = trainer.datamodule
            size = getattr(data, "image_size", None)
            if size:
                self.example_input_size = [1, int(getattr(data, "num_channels", 3)), int(size), int(size)]
            else:
                self.example_input_size = [1, *_images(next(iter(self._loader(trainer)))).shape[1:]]
        return torch.zeros(self.example_input_size, device=pl_module.device)

    @staticmethod
    def _loader(trainer: L.Trainer) -> Any:
        if trainer.datamodule is not None:
            return trainer.datamodule.train_dataloader()
        return trainer.fit_loop._data_source.dataloader()

    def _ignored(self, pl_module: nn.Module, graph: Any) -> list[nn.Module]:
        ignored = set(graph_ops.output_layers(graph))
        if hasattr(pl_module, "pruning_ignored_layers"):
            ignored.update(pl_module.pruning_ignored_layers())
        for name, module in pl_module.named_modules():
            if any(name == n or name.startswith(n + ".") for n in self.ignored_layers):
                ignored.add(module)
        return list(ignored)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        example = self._example(trainer, pl_module)
        if not self.base_flops:
            self.base_flops = graph_ops.count_flops(pl_module, example)
            self.base_params = graph_ops.count_params(pl_module)
        self.report = PruningReport(trainer.default_root_dir)
        if self.warmup_epochs == 0 and not self.rows and trainer.state.fn == "fit":
            # A trained network: record it and prune at the first training epoch.
            self._accept(trainer, pl_module, "baseline", float("nan") if self.baseline is None else self.baseline)

    # -- the schedule ---------------------------------------------------------------------------------------
    def _metric(self, trainer: L.Trainer) -> float | None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return None
        # Every rank must take the same decision: rank 0's value wins.
        return float(trainer.strategy.broadcast(float(value), src=0))

    def allowed_drop(self, trainer: L.Trainer | None = None) -> float | None:
        """``max_drop`` in the metric's units: in standard errors it is ``max_drop·sqrt(p(1-p)/n)``
        with ``p`` the baseline and ``n`` the validation images."""
        if self.max_drop is None or self.max_drop_unit == "absolute":
            return self.max_drop
        n = _validation_size(trainer)
        p = min(max(float(self.baseline), 0.0), 1.0)
        return self.max_drop * (p * (1 - p) / max(n, 1)) ** 0.5

    def _dropped_too_far(self, metric: float, trainer: L.Trainer | None = None) -> bool:
        allowed = self.allowed_drop(trainer)
        if allowed is None or self.baseline is None or self.baseline != self.baseline:
            return False
        drop = self.baseline - metric if self.monitor_mode == "max" else metric - self.baseline
        return drop > allowed + 1e-9

    def _target_reached(self, pl_module: L.LightningModule, trainer: L.Trainer) -> bool:
        flops, params = self._measure(trainer, pl_module)
        if self.target_flops_ratio is not None and flops / self.base_flops <= self.target_flops_ratio:
            return True
        return self.target_params_ratio is not None and params / self.base_params <= self.target_params_ratio

    def _measure(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[int, int]:
        return (graph_ops.count_flops(pl_module, self._example(trainer, pl_module)),
                graph_ops.count_params(pl_module))

    def _record(self, trainer: L.Trainer, pl_module: L.LightningModule, status: str, metric: float) -> None:
        flops, params = self._measure(trainer, pl_module)
        row = {"step": self.step, "epoch": trainer.current_epoch, "status": status, self.monitor: metric,
               "params": params, "flops": flops, "params_ratio": params / self.base_params,
               "flops_ratio": flops / self.base_flops, "widths": graph_ops.widths(pl_module)}
        self.rows.append(row)
        log.info("pruning step %d %s: %s=%.4f params=%d (%.3f) FLOPs=%d (%.3f)", self.step, status, self.monitor,
                 metric, params, row["params_ratio"], flops, row["flops_ratio"])
        if self.report is not None and trainer.is_global_zero:
            self.report.write(self.rows, self.monitor, trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Judge the last surgery on the validation that ends its fine-tuning (docs/pruning.md, "Stop")."""
        if trainer.sanity_checking or trainer.state.fn != "fit" or self.done:
            return
        metric = self._metric(trainer)
        if metric is None:
            return
        epoch = trainer.current_epoch
        if not self.rows:
            if epoch + 1 >= self.warmup_epochs:
                self.baseline = metric if self.baseline is None else self.baseline
                self._accept(trainer, pl_module, "baseline", metric)
            return
        if not self.pending or epoch < self.eval_epoch:
            return
        self.pending = False
        if self._dropped_too_far(metric, trainer):
            self._record(trainer, pl_module, "rejected", metric)
            self._restore(trainer, pl_module)
            if self.mode != "one_shot" and self.ratio / 2 >= self.min_step_ratio - 1e-12:
                self.ratio /= 2  # back off: retry a step half as large from the restored network
                self.surgery_due = True
                log.info("pruning step rejected; retrying with step_ratio %.4f", self.ratio)
                return
            self._finish(trainer, f"{self.monitor} fell more than {self.allowed_drop(trainer):.4f} below the "
                                  f"baseline {self.baseline:.4f} at the smallest step")
            trainer.should_stop = True
            return
        self._accept(trainer, pl_module, "accepted", metric)

    def _accept(self, trainer: L.Trainer, pl_module: L.LightningModule, status: str, metric: float) -> None:
        self.accepted_len = len(self.history)
        self._accepted = graph_ops.snapshot(pl_module)
        self._record(trainer, pl_module, status, metric)
        if status != "baseline" and self.mode == "one_shot":
            self._finish(trainer, "one-shot pruning done")
        elif status != "baseline" and self._target_reached(pl_module, trainer):
            self._finish(trainer, "target ratio reached")
        else:
            self.surgery_due = True

    def _finish(self, trainer: L.Trainer, reason: str) -> None:
        self.done, self.reason, self.surgery_due = True, reason, False
        log.info("pruning stopped after %d steps: %s", self.step, reason)

    def _restore(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Put the last accepted network back (docs/pruning.md: the result is the thinnest accepted one)."""
        if self._accepted is None:
            warnings.warn("no accepted network in memory (resumed mid-step); keeping the current one", stacklevel=2)
            return
        graph_ops.restore(pl_module, self._accepted)
        self.history = self.history[: self.accepted_len]
        self._rebuild_training(trainer, pl_module)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.surgery_due and not self.done:
            self.surgery_due = False
            self.prune_step(trainer, pl_module)

    # -- one step -------------------------------------------------------------------------------------------
    def prune_step(self, trainer: L.Trainer, pl_module: L.LightningModule) -> int:
        """Score, rank, remove; then rebuild the optimiser and the DDP wrapper. Returns neurons removed."""
        example = self._example(trainer, pl_module)
        graph = graph_ops.build_graph(pl_module, example)
        groups = graph_ops.neuron_groups(graph, self._ignored(pl_module, graph))
        costs = graph_ops.neuron_costs(pl_module, groups, example)
        scores = self._scores(trainer, pl_module, groups, costs)
        if self.mode == "layerwise":
            scores = layerwise_keys(scores)
        flops = graph_ops.count_flops(pl_module, example)
        floor = self.target_flops_ratio * self.base_flops if self.target_flops_ratio is not None else 0.0
        if self.mode == "one_shot" and self.target_flops_ratio is None:
            selection = self._one_shot_selection(trainer, pl_module, groups, scores)
        elif self.mode == "one_shot" or self.step_unit == "flops":
            budget = flops - floor if self.mode == "one_shot" else min(self.ratio * flops, flops - floor)
            selection = self._flops_selection(pl_module, example, groups, scores, costs, budget, flops)
        else:
            selection = self.select(scores)
        removed = sum(len(s) for s in selection)
        if removed == 0:
            self._finish(trainer, "every layer is at min_channels")
            return 0
        self.history.extend(graph_ops.prune_groups(graph, groups, selection))
        self.step += 1
        self.pending = True
        self.eval_epoch = trainer.current_epoch + self.finetune_epochs - 1
        self._rebuild_training(trainer, pl_module)
        log.info("pruning step %d removed %d neurons", self.step, removed)
        return removed

    def select(self, scores: list[torch.Tensor]) -> list[list[int]]:
        """Neurons to remove this step (``step_unit="neurons"``) from scores already normalised."""
        if self.mode == "layerwise":
            return select_layerwise(scores, self.ratio, self.min_channels)
        return select_global(scores, step_count([len(s) for s in scores], self.ratio), self.min_channels)

    def _flops_selection(self, pl_module: nn.Module, example: torch.Tensor, groups: list, scores: list[torch.Tensor],
                         costs: list[float], budget: float, flops: int) -> list[list[int]]:
        """The lowest-ranked neurons that save at least ``budget`` FLOPs (docs/pruning.md, "FLOPs steps").

        Per-neuron costs overestimate what removing neighbours together saves, so the choice is
        tried on a copy and the estimate raised by the shortfall until the real saving suffices.
        """
        estimate = budget
        names = [g.name for g in groups]
        selection = select_flops(scores, costs, estimate, self.min_channels)
        for attempt in range(16):
            trial = _trial_copy(pl_module)
            if trial is None:
                break
            trial_graph = graph_ops.build_graph(trial, example)
            by_name = {g.name: g for g in graph_ops.neuron_groups(trial_graph, [])}
            graph_ops.prune_groups(trial_graph, [by_name[n] for n in names], selection)
            saved = flops - graph_ops.count_flops(trial, example)
            if saved >= budget:
                break
            planned = sum(costs[g] * len(idxs) for g, idxs in enumerate(selection))
            # above what is already chosen (so at least one more neuron joins), growing fast past cheap ones
            estimate = planned + (budget - saved) * 2**attempt + 1e-6 * budget
            wider = select_flops(scores, costs, estimate, self.min_channels)
            if wider == selection:  # every layer at min_channels
                break
            selection = wider
        return selection

    def _scores(self, trainer: L.Trainer, pl_module: L.LightningModule, groups: list,
                costs: list[float]) -> list[torch.Tensor]:
        stats = None
        if self.criterion in DATA_CRITERIA:
            batches = []
            for batch in self._loader(trainer):
                if len(batches) >= self.calibration_batches:
                    break
                if isinstance(batch, dict):
                    batch = {k: v for k, v in batch.items() if k != "skipped"}
                batches.append(trainer.strategy.batch_to_device(batch))
            images = [_images(b) for b in batches if _images(b).numel()]
            stats = response_scores(pl_module, groups, images, pl_module, taylor=self.criterion in GRADIENT_CRITERIA,
                                    loss=lambda out, i: _task_loss(pl_module, batches[i]))
        raw = criterion_scores(self.criterion, groups, stats)
        # docs/pruning.md (DDP): the all-reduced scores make every rank remove the same neurons.
        if trainer.world_size > 1 and raw:
            flat = trainer.strategy.reduce(torch.cat(raw).to(pl_module.device), reduce_op="mean").cpu()
            raw = list(flat.split([len(s) for s in raw]))
        return normalise(raw, self.normalization, costs)

    def _one_shot_selection(self, trainer: L.Trainer, pl_module: L.LightningModule, groups: list,
                            scores: list[torch.Tensor]) -> list[list[int]]:
        """The smallest global step that meets the FLOPs/parameter target (bisection on the step size)."""
        example = self._example(trainer, pl_module)
        total = sum(len(s) for s in scores)
        lo, hi = 0, total
        names = [g.name for g in groups]
        while hi - lo > max(1, total // 200):
            mid = (lo + hi) // 2
            trial = _trial_copy(pl_module)
            if trial is None:
                raise RuntimeError("one_shot pruning to a FLOPs or parameter target tries its step on a copy of the "
                                   "module, which cannot be made here (DDP): run it in one process")
            trial_graph = graph_ops.build_graph(trial, example)
            by_name = {g.name: g for g in graph_ops.neuron_groups(trial_graph, [])}
            graph_ops.prune_groups(trial_graph, [by_name[n] for n in names],
                                   select_global(scores, mid, self.min_channels))
            flops, params = graph_ops.count_flops(trial, example), graph_ops.count_params(trial)
            ok = ((self.target_flops_ratio is None or flops / self.base_flops <= self.target_flops_ratio)
                  and (self.target_params_ratio is None or params / self.base_params <= self.target_params_ratio))
            hi, lo = (mid, lo) if ok else (hi, mid)
        return select_global(scores, hi, self.min_channels)

    def _rebuild_training(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """New parameters need a new optimiser, LR scheduler and DDP wrapper (docs/pruning.md, "A step")."""
        strategy = trainer.strategy
        if isinstance(strategy.model, DistributedDataParallel):
            strategy.model = pl_module
            strategy.configure_ddp()
        if trainer.state.fn == "fit" and strategy.optimizers:
            strategy.setup_optimizers(trainer)
            if self.finetune_lr is None:
                return  # the schedule restarts from the configured rate: a step gets a rate it can recover at
            for optimizer in strategy.optimizers:  # each group keeps its ratio to the first group's rate
                first = optimizer.param_groups[0]["lr"]
                for group in optimizer.param_groups:
                    group["lr"] = self.finetune_lr * group["lr"] / first if first else self.finetune_lr
            for config in strategy.lr_scheduler_configs:
                config.scheduler.base_lrs = [g["lr"] for g in config.scheduler.optimizer.param_groups]

    # -- the end --------------------------------------------------------------------------------------------
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.rows:
            return
        root = trainer.default_root_dir
        if self.export:
            trainer.save_checkpoint(f"{root}/pruned/pruned.ckpt")  # collective: every rank calls it
        self._write_history(trainer)
        if trainer.is_global_zero:
            if self.report is not None:
                self.report.write(self.rows, self.monitor, trainer, final=True)
            if self.export:
                export_network(pl_module, self._example(trainer, pl_module), f"{root}/pruned")

    def _write_history(self, trainer: L.Trainer) -> None:
        folder = Path(trainer.default_root_dir) / "pruned"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"history_rank{trainer.global_rank}.json").write_text(json.dumps(
            {"history": self.history, "reason": self.reason, "steps": self.step}, indent=1))


__all__ = ["GradualGlobalPruning", "restore_pruned_structure", "thin"]
