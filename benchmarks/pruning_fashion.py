"""Accuracy against FLOPs on Fashion-MNIST: gradual ``global`` pruning against ``layerwise`` and ``one_shot``.

docs/pruning.md ("The claim, measured"). Per seed the 5-conv network of
``experiments/pruning/fashion_vgg.yaml`` is trained once (``--phase train``: ``<out>/seed<s>.pt``);
every mode × FLOPs ratio then starts from that checkpoint (``--phase prune``) and gets the same
fine-tuning: ``--finetune-epochs`` epochs of ``--finetune-batches`` batches at ``--finetune-lr``.
``global`` and ``layerwise`` remove ``--step-ratio`` of the remaining FLOPs per step with
``--epochs-per-step`` fine-tuning epochs between steps until the target ratio; ``one_shot`` removes
everything in the first step; all of them fine-tune the rest of the epochs. Target 0 means no
target: the stop rule (``--max-drop`` standard errors of val/acc, with back-off) ends pruning.
Test accuracy on the official 10,000 test images. One CSV row per run (``--csv``); runs already in
it are skipped, so seeds can be added. The settings of benchmarks/RESULTS.md are given there.

    OMP_NUM_THREADS=1 python benchmarks/pruning_fashion.py --phase train --seeds 0 1 2
    OMP_NUM_THREADS=1 python benchmarks/pruning_fashion.py --phase prune --seeds 0 1 2
    python benchmarks/pruning_fashion.py --phase report        # table (mean ± std) and PNG

Reads Fashion-MNIST from the Debian package (``/usr/share/datasets/fashion-mnist``) or ``--root``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import logging
import sys
import time
import warnings
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L  # noqa: E402
import torch  # noqa: E402

from affectlab.callbacks.pruning import GradualGlobalPruning  # noqa: E402
from affectlab.callbacks.pruning_graph import count_flops, count_params, widths  # noqa: E402
from affectlab.datamodules.fashion_mnist import FashionMNIST  # noqa: E402
from affectlab.modules.small_cnn import SmallCNNClassifier  # noqa: E402

FIELDS = ("seed", "mode", "target", "criterion", "normalization", "step_ratio", "test_acc", "val_acc",
          "flops_ratio", "params_ratio", "flops", "params", "steps", "finetune_epochs", "finetune_batches",
          "train_size", "train_epochs", "cpu_s", "widths")
EXAMPLE = torch.zeros(1, 1, 28, 28)


def _data(args: argparse.Namespace) -> FashionMNIST:
    return FashionMNIST(root=args.root, batch_size=128, num_workers=0, val_size=args.val_size,
                        train_size=args.train_size, cache_dir=str(Path(args.out) / "data"))


def _model(data: FashionMNIST, lr: float, step_size: int) -> SmallCNNClassifier:
    return SmallCNNClassifier(taxonomy=data.taxonomy_spec, in_channels=1, widths=[32, 32, 64, 64, 128],
                              pool_every=2, hidden=128,
                              optimizer=partial(torch.optim.AdamW, lr=lr, weight_decay=5e-4),
                              lr_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=step_size)
                              if step_size else None)


def _trainer(args: argparse.Namespace, root: Path, epochs: int, callbacks: list, **kwargs) -> L.Trainer:
    return L.Trainer(max_epochs=epochs, callbacks=callbacks, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(root),
                     num_sanity_val_steps=0, accelerator="cpu", **kwargs)


def _done(path: Path) -> set[tuple]:
    if not path.is_file():
        return set()
    with path.open() as f:
        return {(int(r["seed"]), r["mode"], float(r["target"]), r["criterion"], r["normalization"])
                for r in csv.DictReader(f)}


def _append(path: Path, row: dict) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in FIELDS})


def train(args: argparse.Namespace, seed: int) -> None:
    out = Path(args.out)
    ckpt = out / f"seed{seed}.pt"
    if ckpt.is_file():
        return
    L.seed_everything(seed, workers=True)
    data = _data(args)
    model = _model(data, args.lr, args.lr_step)
    start = time.process_time()
    _trainer(args, out / f"train{seed}", args.train_epochs, [], limit_val_batches=0).fit(model, data)
    evaluator = _trainer(args, out / f"train{seed}", 1, [], limit_val_batches=args.val_batches)
    val = evaluator.validate(model, data, verbose=False)[0]["val/acc"]
    test = evaluator.test(model, data, verbose=False)[0]["test/acc"]
    torch.save({"state_dict": model.state_dict(), "val_acc": val, "test_acc": test}, ckpt)
    _append(Path(args.csv), {"seed": seed, "mode": "unpruned", "target": 1.0, "test_acc": test, "val_acc": val,
                             "flops_ratio": 1.0, "params_ratio": 1.0, "flops": count_flops(model, EXAMPLE),
                             "params": count_params(model), "steps": 0, "train_size": args.train_size,
                             "train_epochs": args.train_epochs, "cpu_s": round(time.process_time() - start),
                             "widths": json.dumps(widths(model))})


def prune(args: argparse.Namespace, seed: int, mode: str, target: float) -> None:
    out = Path(args.out)
    saved = torch.load(out / f"seed{seed}.pt", weights_only=False)
    L.seed_everything(seed, workers=True)
    data = _data(args)
    model = _model(data, args.finetune_lr, 0)
    model.load_state_dict(saved["state_dict"])
    base_flops, base_params = count_flops(model, EXAMPLE), count_params(model)
    # target 0: no FLOPs target, the stop rule ends pruning (--max-drop standard errors below the
    # unpruned network's accuracy on the same validation images).
    stop_rule = not target
    baseline = saved["val_acc"]
    if stop_rule:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # on a copy: validation leaves the metrics' states as inference tensors fit cannot update
            baseline = _trainer(args, out / "baseline", 1, [], limit_val_batches=args.val_batches).validate(
                copy.deepcopy(model), data, verbose=False)[0]["val/acc"]
    pruning = GradualGlobalPruning(criterion=args.criterion, normalization=args.normalization,
                                   mode="global" if mode == "finetuned" else mode,
                                   step_ratio=args.step_ratio, step_unit="flops", min_channels=2,
                                   warmup_epochs=0, baseline=baseline, finetune_epochs=args.epochs_per_step,
                                   finetune_lr=args.finetune_lr, max_drop=args.max_drop if stop_rule else None,
                                   max_drop_unit="se", target_flops_ratio=target or None,
                                   calibration_batches=args.calibration_batches, export=False)
    start = time.process_time()
    # ``unpruned``-with-fine-tuning is the control: the same fine-tuning epochs without pruning.
    callbacks = [] if mode == "finetuned" else [pruning]
    trainer = _trainer(args, out / f"{mode}_{target}_{seed}", args.finetune_epochs, callbacks,
                       limit_train_batches=args.finetune_batches, limit_val_batches=args.val_batches)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, data)
        val = ([r for r in pruning.rows if r["status"] != "rejected"][-1]["val/acc"] if pruning.rows
               else float(trainer.callback_metrics["val/acc"]))
        test = trainer.test(model, data, verbose=False)[0]["test/acc"]
    _append(Path(args.csv), {
        "seed": seed, "mode": mode, "target": target, "criterion": "" if mode == "finetuned" else args.criterion,
        "normalization": "" if mode == "finetuned" else args.normalization, "step_ratio": args.step_ratio, "test_acc": test, "val_acc": val,
        "flops_ratio": count_flops(model, EXAMPLE) / base_flops, "params_ratio": count_params(model) / base_params,
        "flops": count_flops(model, EXAMPLE), "params": count_params(model), "steps": pruning.step,
        "finetune_epochs": args.finetune_epochs, "finetune_batches": args.finetune_batches,
        "train_size": args.train_size, "train_epochs": args.train_epochs,
        "cpu_s": round(time.process_time() - start), "widths": json.dumps(widths(model))})


def report(args: argparse.Namespace) -> str:
    import pandas as pd

    frame = pd.read_csv(args.csv)
    base = frame[frame["mode"] == "unpruned"]
    control = frame[frame["mode"] == "finetuned"]
    pruned = frame[~frame["mode"].isin(["unpruned", "finetuned"])].copy()
    pruned["mode"] = pruned["mode"] + " (" + pruned["criterion"] + ", " + pruned["normalization"] + ")"
    pruned.loc[pruned["target"] == 0, "mode"] += ", stop rule"
    stats = pruned.groupby(["target", "mode"]).agg(
        test=("test_acc", "mean"), std=("test_acc", "std"), flops=("flops_ratio", "mean"),
        params=("params_ratio", "mean"), n=("seed", "nunique")).reset_index()
    lines = ["| network | FLOPs target | test acc (mean ± std) | FLOPs ratio | params ratio | seeds |",
             "| --- | --- | --- | --- | --- | --- |"]
    if len(base):  # the training rows (a study that reuses another's checkpoints has none)
        lines.append(f"| trained (before fine-tuning) | 1.00 | {base.test_acc.mean():.4f} ± {base.test_acc.std():.4f} | "
                     f"1.000 | 1.000 | {base.seed.nunique()} |")
    if len(control):
        lines.append(f"| unpruned, same fine-tuning (control) | 1.00 | {control.test_acc.mean():.4f} ± "
                     f"{control.test_acc.std():.4f} | 1.000 | 1.000 | {control.seed.nunique()} |")
    for r in stats.sort_values(["target", "mode"], ascending=[False, True]).itertuples():
        target = "— (stop rule)" if r.target == 0 else f"{r.target:.2f}"
        lines.append(f"| {r.mode} | {target} | {r.test:.4f} ± {r.std:.4f} | {r.flops:.3f} | "
                     f"{r.params:.3f} | {r.n} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    reference = control if len(control) else base
    level = reference.test_acc.mean()
    ax.axhline(level, color="gray", ls="--", label="unpruned, same fine-tuning" if len(control) else "unpruned")
    ax.axhspan(level - 0.01, level, color="gray", alpha=0.15, label="1 point below")
    for mode, marker in zip(sorted(stats["mode"].unique()), "osv^Dx", strict=False):
        part = stats[stats["mode"] == mode].sort_values("flops")
        if len(part):
            ax.errorbar(part["flops"], part["test"], yerr=part["std"].fillna(0), marker=marker, capsize=3, label=mode)
    ax.set_xlabel("FLOPs / unpruned FLOPs")
    ax.set_ylabel("test accuracy (10,000 images)")
    budgets = sorted({(int(r.finetune_epochs), int(r.finetune_batches)) for r in pruned.itertuples()})
    ax.set_title("Fashion-MNIST, 5-conv VGG; fine-tuning " + ", ".join(f"{e}×{b}" for e, b in budgets) + " batches",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.png, dpi=120)
    plt.close(fig)
    return "\n".join(lines)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=("train", "prune", "report", "all"), default="all")
    parser.add_argument("--root", default="data")
    parser.add_argument("--out", default="runs/bench_pruning_fashion")
    parser.add_argument("--csv", default="benchmarks/results/pruning_fashion.csv")
    parser.add_argument("--png", default="docs/pruning_fashion.png")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--val-size", type=int, default=5000)
    parser.add_argument("--train-epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--lr-step", type=int, default=1, help="training epochs between ×0.1 decays")
    parser.add_argument("--modes", nargs="+", default=["global", "layerwise", "one_shot"],
                        help="also 'finetuned': the control, the same fine-tuning without pruning (--targets 1)")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.5, 0.3, 0.75],
                        help="FLOPs ratios; 0: no target, prune until the stop rule (--max-drop) ends it")
    parser.add_argument("--max-drop", type=float, default=2.0,
                        help="with target 0: the accepted fall of val/acc, in standard errors")
    parser.add_argument("--criterion", default=None, help="default: the callback's")
    parser.add_argument("--normalization", default=None, help="default: the callback's")
    parser.add_argument("--step-ratio", type=float, default=0.2, help="share of the remaining FLOPs per step")
    parser.add_argument("--finetune-epochs", type=int, default=6)
    parser.add_argument("--finetune-batches", type=int, default=5)
    parser.add_argument("--finetune-lr", type=float, default=5e-4)
    parser.add_argument("--epochs-per-step", type=int, default=1, help="fine-tuning epochs between two steps")
    parser.add_argument("--val-batches", type=int, default=4)
    parser.add_argument("--calibration-batches", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    defaults = GradualGlobalPruning()
    args.criterion = args.criterion or defaults.criterion
    args.normalization = args.normalization or defaults.normalization
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    if args.phase in ("train", "all"):
        for seed in args.seeds:
            train(args, seed)
    if args.phase in ("prune", "all"):
        for seed in args.seeds:
            train(args, seed)
            for target in args.targets:
                for mode in args.modes:
                    key = (seed, mode, target, "" if mode == "finetuned" else args.criterion,
                           "" if mode == "finetuned" else args.normalization)
                    if key not in _done(Path(args.csv)):
                        prune(args, seed, mode, target)
    if args.phase in ("report", "all"):
        print(report(args))


if __name__ == "__main__":
    main()
