"""Gradually global pruning (docs/pruning.md): a Lightning callback that makes any module thinner.

Lightning's ``ModelPruning`` masks weights, so nothing gets faster. ``GradualGlobalPruning``
removes neurons: after ``warmup_epochs`` it ranks every remaining neuron of the network in one
global list (scores made comparable across layers by the bias elimination), physically removes
the lowest ``step_ratio`` through torch-pruning's dependency graph, rebuilds the optimiser, LR
scheduler and DDP wrapper over the new parameters, fine-tunes ``every_n_epochs`` and validates.
When the monitored metric falls more than ``max_drop`` below the unpruned baseline, the last
accepted network is restored and training stops; a FLOPs or parameter target also ends pruning.

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
    MODES,
    activation_scores,
    l1_scores,
    normalise,
    select_global,
    select_layerwise,
    step_count,
)
from affectlab.callbacks.pruning_report import PruningReport, export_network

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


def _task_loss(module: nn.Module, batch: Any) -> torch.Tensor:
    """The training loss on ``batch`` for the Taylor criterion (``pruning_loss`` or EmotionTask's loss)."""
    if hasattr(module, "pruning_loss"):
        return module.pruning_loss(batch)
    if hasattr(module, "compute") and hasattr(module, "taxonomy"):
        labels = module.taxonomy.labels_at_levels(batch["label"])
        return module.loss(module.compute(batch["image"]), labels)["loss"]
    raise ValueError("criterion='taylor' needs a loss: define pruning_loss(batch) on the LightningModule")


class GradualGlobalPruning(Callback):
    """Gradually global neuron pruning under a performance bound (docs/pruning.md).

    Args:
        criterion: neuron importance — ``activation`` (mean post-activation magnitude over the
            calibration batches, default), ``l1`` (L1 norm of the neuron's weights) or ``taylor``
            (``|activation × gradient|``).
        normalization: bias elimination across layers — divide by the layer ``mean`` (default),
            ``l2``, ``max`` or ``none``.
        mode: ``global`` (one ranking), ``layerwise`` (the same ratio in every layer),
            ``global_unnormalised`` (one ranking of raw scores) or ``one_shot`` (everything at the
            first step, as much as the FLOPs/parameter target asks).
        step_ratio: fraction of the remaining neurons removed per step.
        min_channels: neurons every layer keeps.
        ignored_layers: module names never pruned (with everything under them). Output layers are
            always ignored: those a module lists in ``pruning_ignored_layers()`` and those found
            automatically (layers whose outputs reach the network output through no other layer).
        warmup_epochs: epochs trained before the baseline is measured and pruning starts.
        every_n_epochs: fine-tuning epochs between two steps (``finetune_epochs`` in docs/pruning.md).
        max_drop: largest accepted fall of ``monitor`` below the unpruned baseline, in the metric's
            units (0.01 is one point of ``val/acc``); ``None`` disables the stop rule.
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
        criterion: str = "activation",
        normalization: str = "mean",
        mode: str = "global",
        step_ratio: float = 0.05,
        min_channels: int = 1,
        ignored_layers: list[str] | None = None,
        warmup_epochs: int = 1,
        every_n_epochs: int = 1,
        max_drop: float | None = 0.01,
        monitor: str = "val/acc",
        monitor_mode: str = "max",
        target_flops_ratio: float | None = None,
        target_params_ratio: float | None = None,
        calibration_batches: int = 4,
        example_input_size: list[int] | None = None,
        export: bool = True,
    ) -> None:
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "one_shot" and target_flops_ratio is None and target_params_ratio is None:
            raise ValueError("mode='one_shot' prunes to a budget: set target_flops_ratio or target_params_ratio")
        if not 0 < step_ratio < 1:
            raise ValueError(f"step_ratio must lie in (0, 1), got {step_ratio}")
        self.criterion = criterion
        self.normalization = "none" if mode == "global_unnormalised" else normalization
        normalise([], self.normalization)  # validates the name
        self.mode = mode
        self.step_ratio = step_ratio
        self.min_channels = min_channels
        self.ignored_layers = list(ignored_layers or [])
        self.warmup_epochs = warmup_epochs
        self.every_n_epochs = max(1, every_n_epochs)
        self.max_drop = max_drop
        self.monitor = monitor
        self.monitor_mode = monitor_mode
        self.target_flops_ratio = target_flops_ratio
        self.target_params_ratio = target_params_ratio
        self.calibration_batches = calibration_batches
        self.example_input_size = list(example_input_size) if example_input_size else None
        self.export = export
        # State kept in checkpoints (state_dict / load_state_dict).
        self.step = 0                      # surgeries done
        self.baseline: float | None = None  # monitored metric of the unpruned network
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
    _STATE = ("step", "baseline", "history", "accepted_len", "pending", "surgery_due", "eval_epoch", "done",
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

    # -- the schedule ---------------------------------------------------------------------------------------
    def _metric(self, trainer: L.Trainer) -> float | None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return None
        # Every rank must take the same decision: rank 0's value wins.
        return float(trainer.strategy.broadcast(float(value), src=0))

    def _dropped_too_far(self, metric: float) -> bool:
        if self.max_drop is None:
            return False
        drop = self.baseline - metric if self.monitor_mode == "max" else metric - self.baseline
        return drop > self.max_drop + 1e-9

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
            self.report.write(self.rows, self.monitor, trainer.logger)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Judge the last surgery on the validation that ends its fine-tuning (docs/pruning.md, "Stop")."""
        if trainer.sanity_checking or trainer.state.fn != "fit" or self.done:
            return
        metric = self._metric(trainer)
        if metric is None:
            return
        epoch = trainer.current_epoch
        if self.baseline is None:
            if epoch + 1 >= self.warmup_epochs:
                self.baseline = metric
                self._accept(trainer, pl_module, "baseline", metric)
            return
        if not self.pending or epoch < self.eval_epoch:
            return
        self.pending = False
        if self._dropped_too_far(metric):
            self._record(trainer, pl_module, "rejected", metric)
            self._restore(trainer, pl_module)
            self._finish(trainer, f"{self.monitor} fell more than {self.max_drop} below the baseline {self.baseline:.4f}")
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
        scores = self._scores(trainer, pl_module, groups)
        if self.mode == "one_shot":
            selection = self._one_shot_selection(trainer, pl_module, groups, scores)
        else:
            selection = self.select(scores)
        removed = sum(len(s) for s in selection)
        if removed == 0:
            self._finish(trainer, "every layer is at min_channels")
            return 0
        self.history.extend(graph_ops.prune_groups(graph, groups, selection))
        self.step += 1
        self.pending = True
        self.eval_epoch = trainer.current_epoch + self.every_n_epochs - 1
        self._rebuild_training(trainer, pl_module)
        log.info("pruning step %d removed %d neurons", self.step, removed)
        return removed

    def select(self, scores: list[torch.Tensor]) -> list[list[int]]:
        """Neurons to remove this step from scores already normalised."""
        if self.mode == "layerwise":
            return select_layerwise(scores, self.step_ratio, self.min_channels)
        return select_global(scores, step_count([len(s) for s in scores], self.step_ratio), self.min_channels)

    def _scores(self, trainer: L.Trainer, pl_module: L.LightningModule, groups: list) -> list[torch.Tensor]:
        if self.criterion == "l1":
            raw = l1_scores(groups)
        else:
            batches = []
            for batch in self._loader(trainer):
                if len(batches) >= self.calibration_batches:
                    break
                if isinstance(batch, dict):
                    batch = {k: v for k, v in batch.items() if k != "skipped"}
                batches.append(trainer.strategy.batch_to_device(batch))
            images = [_images(b) for b in batches if _images(b).numel()]
            raw = activation_scores(pl_module, groups, images, pl_module, taylor=self.criterion == "taylor",
                                    loss=lambda out, i: _task_loss(pl_module, batches[i]))
        # docs/pruning.md (DDP): the all-reduced scores make every rank remove the same neurons.
        if trainer.world_size > 1 and raw:
            flat = trainer.strategy.reduce(torch.cat(raw).to(pl_module.device), reduce_op="mean").cpu()
            raw = list(flat.split([len(s) for s in raw]))
        return normalise(raw, self.normalization)

    def _one_shot_selection(self, trainer: L.Trainer, pl_module: L.LightningModule, groups: list,
                            scores: list[torch.Tensor]) -> list[list[int]]:
        """The smallest global step that meets the FLOPs/parameter target (bisection on the step size)."""
        example = self._example(trainer, pl_module)
        total = sum(len(s) for s in scores)
        lo, hi = 0, total
        names = [g.name for g in groups]
        while hi - lo > max(1, total // 200):
            mid = (lo + hi) // 2
            trial = copy.deepcopy(pl_module)
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
            with warnings.catch_warnings():  # bring epoch schedules back to where training is
                warnings.simplefilter("ignore")
                for config in strategy.lr_scheduler_configs:
                    if config.interval == "epoch":
                        for _ in range(trainer.current_epoch):
                            config.scheduler.step()

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
                self.report.write(self.rows, self.monitor, trainer.logger, final=True)
            if self.export:
                export_network(pl_module, self._example(trainer, pl_module), f"{root}/pruned")

    def _write_history(self, trainer: L.Trainer) -> None:
        folder = Path(trainer.default_root_dir) / "pruned"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"history_rank{trainer.global_rank}.json").write_text(json.dumps(
            {"history": self.history, "reason": self.reason, "steps": self.step}, indent=1))


__all__ = ["GradualGlobalPruning", "restore_pruned_structure", "thin"]
