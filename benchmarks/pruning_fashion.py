"""Gradually global pruning of a small VGG on real Fashion-MNIST, against layerwise and one-shot.

docs/pruning.md: train, then prune with ``max_drop`` of one accuracy point (``global``); then, at the
FLOPs budget ``global`` reached and with the same number of epochs, the comparison modes
``layerwise`` (same ratio per layer, gradual) and ``one_shot`` (everything in one step, then
fine-tuning). Prints a markdown table of test accuracy, parameters and FLOPs.

    python benchmarks/pruning_fashion.py --train-size 12000 --epochs 14 --warmup 5 --step-ratio 0.05 --threads 1

Reads Fashion-MNIST from the Debian package (``/usr/share/datasets/fashion-mnist``) or ``--root``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L  # noqa: E402
import torch  # noqa: E402

from affectlab.callbacks.pruning import GradualGlobalPruning  # noqa: E402
from affectlab.callbacks.pruning_graph import count_flops, count_params  # noqa: E402
from affectlab.datamodules.fashion_mnist import FashionMNIST  # noqa: E402
from affectlab.modules.small_cnn import SmallCNNClassifier  # noqa: E402


class KeepBaseline(L.Callback):
    """Keeps a copy of the unpruned network as it was when the baseline was measured."""

    def __init__(self, pruning: GradualGlobalPruning) -> None:
        self.pruning, self.model = pruning, None

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.model is None and self.pruning.baseline is not None:
            self.model = copy.deepcopy(pl_module)


def run(args: argparse.Namespace, mode: str, target: float | None, out: Path) -> dict:
    L.seed_everything(0, workers=True)
    data = FashionMNIST(root=args.root, batch_size=128, num_workers=0, val_size=args.val_size,
                        train_size=args.train_size, cache_dir=str(out / "data"))
    model = SmallCNNClassifier(taxonomy=data.taxonomy_spec, in_channels=1, widths=args.widths, pool_every=1,
                               hidden=args.hidden,
                               lr_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=args.lr_step)
                               if args.lr_step else None)
    pruning = GradualGlobalPruning(criterion="activation", normalization="mean", mode=mode,
                                   step_ratio=args.step_ratio, min_channels=2, warmup_epochs=args.warmup,
                                   every_n_epochs=1, max_drop=0.01 if mode == "global" else None,
                                   target_flops_ratio=target, calibration_batches=8, export=mode == "global")
    keep = KeepBaseline(pruning)
    trainer = L.Trainer(max_epochs=args.epochs, callbacks=[pruning, keep], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, default_root_dir=str(out / mode), enable_model_summary=False)
    start = time.time()
    trainer.fit(model, data)
    example = torch.zeros(1, 1, 28, 28)
    result = {"mode": mode, "minutes": (time.time() - start) / 60, "steps": sum(r["status"] == "accepted" for r in pruning.rows),
              "epochs": trainer.current_epoch, "reason": pruning.reason,
              "val_baseline": pruning.baseline, "val_final": [r for r in pruning.rows if r["status"] != "rejected"][-1]["val/acc"]}
    for name, net in (("baseline", keep.model), ("pruned", model)):
        acc = trainer.test(net, data, verbose=False)[0]["test/acc"]
        result[name] = {"test_acc": acc, "params": count_params(net), "flops": count_flops(net, example)}
    result["widths"] = \
        [r for r in pruning.rows if r["status"] != "rejected"][-1]["widths"]
    result["rows"] = [{k: v for k, v in r.items() if k != "widths"} for r in pruning.rows]
    result["flops_ratio"] = result["pruned"]["flops"] / result["baseline"]["flops"]
    result["params_ratio"] = result["pruned"]["params"] / result["baseline"]["params"]
    (out / f"{mode}.json").write_text(json.dumps(result, indent=1))
    return result


def table(results: list[dict], args: argparse.Namespace) -> str:
    lines = ["| network | test acc | val acc (baseline → final) | params | FLOPs | FLOPs ratio | accepted steps | epochs | stop |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    base = results[0]["baseline"]
    lines.append(f"| unpruned baseline | {base['test_acc']:.4f} | {results[0]['val_baseline']:.4f} | "
                 f"{base['params']:,} | {base['flops']:,} | 1.000 | 0 | {args.warmup} | – |")
    for r in results:
        p = r["pruned"]
        lines.append(f"| {r['mode']} | {p['test_acc']:.4f} | {r['val_baseline']:.4f} → {r['val_final']:.4f} | "
                     f"{p['params']:,} | {p['flops']:,} | {r['flops_ratio']:.3f} | {r['steps']} | {r.get('epochs', '')} | "
                     f"{r['reason']} |")
    return "\n".join(lines)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data")
    parser.add_argument("--out", default="runs/bench_pruning_fashion")
    parser.add_argument("--train-size", type=int, default=12000)
    parser.add_argument("--val-size", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--step-ratio", type=float, default=0.05)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--lr-step", type=int, default=4, help="epochs between ×0.1 learning-rate decays")
    parser.add_argument("--modes", nargs="+", default=["global", "layerwise", "one_shot"],
                        help="global first; the others prune to the FLOPs ratio it reached")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Each mode writes <out>/<mode>.json, so modes can also run as separate processes after global.
    results = [run(args, "global", None, out) if "global" in args.modes
               else json.loads((out / "global.json").read_text())]
    budget = results[0]["flops_ratio"]
    for mode in [m for m in args.modes if m != "global"]:
        results.append(run(args, mode, budget, out))
    for mode in ("layerwise", "one_shot"):  # modes finished by other processes join the table
        if mode not in args.modes and (out / f"{mode}.json").is_file():
            results.append(json.loads((out / f"{mode}.json").read_text()))
    print(f"\nFLOPs budget from global: {budget:.3f}\n")
    print(table(results, args))
    (out / "table.md").write_text(table(results, args) + "\n")


if __name__ == "__main__":
    main()
