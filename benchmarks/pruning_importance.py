"""Does an importance score track what removing a neuron really costs? (docs/pruning.md, "Importance")

For a trained network, every prunable neuron is removed alone (its pre-activation zeroed, which is
what removal does downstream) and the rise of the validation loss on a subsample is measured.
Every criterion × normalisation of the callback then scores the same neurons from a few training
batches, and the Spearman correlation with the loss rise is reported within each layer and across
all layers (the global ranking's case). One CSV row per seed × criterion × normalisation.

    OMP_NUM_THREADS=1 python benchmarks/pruning_importance.py --seeds 0 1 2

Default network: the small VGG of the earlier benchmark (convs 16-32-64 with a pool each, hidden 64;
176 neurons) trained on 6,000 Fashion-MNIST images. ``--checkpoint`` scores a network saved by
``benchmarks/pruning_fashion.py`` instead.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from affectlab.callbacks import pruning_graph as graph_ops  # noqa: E402
from affectlab.callbacks.pruning_importance import (  # noqa: E402
    CRITERIA,
    NORMALIZATIONS,
    criterion_scores,
    normalise,
    response_scores,
)
from affectlab.datamodules.fashion_mnist import FashionMNIST  # noqa: E402
from affectlab.modules.small_cnn import SmallCNNClassifier  # noqa: E402


def trained(args: argparse.Namespace, seed: int) -> tuple[SmallCNNClassifier, FashionMNIST]:
    L.seed_everything(seed, workers=True)
    if args.checkpoint:
        data = FashionMNIST(root=args.root, batch_size=128, num_workers=0, val_size=5000, train_size=args.train_size,
                            cache_dir="runs/data")
        model = SmallCNNClassifier(taxonomy=data.taxonomy_spec, in_channels=1, widths=[32, 32, 64, 64, 128],
                                   pool_every=2, hidden=128)
        model.load_state_dict(torch.load(args.checkpoint.format(seed=seed), weights_only=False)["state_dict"])
        return model.eval(), data
    data = FashionMNIST(root=args.root, batch_size=128, num_workers=0, val_size=5000, train_size=args.train_size,
                        cache_dir="runs/data")
    model = SmallCNNClassifier(taxonomy=data.taxonomy_spec, in_channels=1, widths=[16, 32, 64], pool_every=1,
                               hidden=64)  # SmallCNNClassifier's default: AdamW, lr 2e-3
    L.Trainer(max_epochs=args.epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, accelerator="cpu",
              default_root_dir="runs/bench_pruning_importance").fit(model, data)
    return model.eval(), data


def subsample(data: FashionMNIST, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    data.setup()
    items = [data.datasets[split][i] for i in range(min(n, len(data.datasets[split])))]
    return torch.stack([it["image"] for it in items]), torch.tensor([it["label"] for it in items])


def _stages(net: nn.Module) -> list[nn.Module]:
    """``SmallVGG`` as one sequence of modules (its forward: features, global pooling, classifier)."""
    return [*net.features, nn.AdaptiveAvgPool2d(1), *net.classifier]


@torch.no_grad()
def loss_rises(model: SmallCNNClassifier, groups: list, images: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    """Validation-loss rise of removing each neuron alone (its site's output channel set to 0).

    The network runs once up to each site; only the rest of it runs again per neuron.
    """
    stages = _stages(model.net)

    def run(x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        for module in stages[start:stop]:
            x = module(x)
        return x

    def loss(x: torch.Tensor, start: int) -> float:
        return float(sum(F.cross_entropy(run(part, start, len(stages)), y, reduction="sum")
                         for part, y in zip(x.split(500), labels.split(500), strict=True)) / len(labels))

    base = loss(images, 0)
    rises = []
    for g in groups:
        (site,) = g.sites
        at = next(i for i, m in enumerate(stages) if m is site) + 1
        cached = run(images, 0, at)  # the site's output, before the activation
        rise = torch.zeros(g.width)
        for i in range(g.width):
            ablated = cached.clone()
            ablated[:, i] = 0
            rise[i] = loss(ablated, at) - base
        rises.append(rise)
    return rises


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--val-images", type=int, default=1000, help="validation subsample for the loss rise")
    parser.add_argument("--calibration-batches", type=int, default=4, help="training batches of 128 for the scores")
    parser.add_argument("--checkpoint", default=None, help="e.g. runs/bench_pruning_fashion/seed{seed}.pt")
    parser.add_argument("--csv", default="benchmarks/results/pruning_importance.csv")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table", action="store_true", help="only print the table of --csv")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    if args.table:
        print_table(args.csv)
        return
    rows = []
    for seed in args.seeds:
        start = time.process_time()
        model, data = trained(args, seed)
        example = torch.zeros(1, 1, 28, 28)
        graph = graph_ops.build_graph(model, example)
        groups = graph_ops.neuron_groups(graph, [*graph_ops.output_layers(graph), *model.pruning_ignored_layers()])
        images, labels = subsample(data, "val", args.val_images)
        rises = loss_rises(model, groups, images, labels)
        loader = iter(data.train_dataloader())
        batches = [next(loader) for _ in range(args.calibration_batches)]
        stats = response_scores(model, groups, [b["image"] for b in batches], model, taylor=True,
                                loss=lambda out, i, model=model, batches=batches: model.loss(
                                    model.compute(batches[i]["image"]), [batches[i]["label"]])["loss"])
        costs = graph_ops.neuron_costs(model, groups, example)
        truth = torch.cat(rises)
        val_acc = float((torch.cat([model.net(x).argmax(1) for x in images.split(500)]) == labels).float().mean())
        for criterion in CRITERIA:
            raw = criterion_scores(criterion, groups, stats)
            for how in NORMALIZATIONS:
                scores = normalise(raw, how, costs)
                row = {"seed": seed, "network": "checkpoint" if args.checkpoint else "small", "val_acc": round(val_acc, 4),
                       "criterion": criterion, "normalization": how,
                       "across": round(float(spearmanr(torch.cat(scores), truth).statistic), 4)}
                for g, s, r in zip(groups, scores, rises, strict=True):
                    row[f"within:{g.name}"] = round(float(spearmanr(s, r).statistic), 4)
                rows.append(row)
        print(f"seed {seed}: {sum(g.width for g in groups)} neurons, val acc {val_acc:.4f}, "
              f"{time.process_time() - start:.0f} CPU s", flush=True)
        new = not Path(args.csv).is_file()
        with open(args.csv, "a", newline="") as f:  # one block of rows per seed; seeds can run side by side
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            if new:
                writer.writeheader()
            writer.writerows(rows)
        rows = []
    print_table(args.csv)


def print_table(path: str) -> None:
    import pandas as pd

    frame = pd.read_csv(path)
    within = [c for c in frame.columns if c.startswith("within:")]
    table = frame.groupby(["criterion", "normalization"], sort=False).agg(
        across=("across", "mean"), across_std=("across", "std"), **{c: (c, "mean") for c in within}).reset_index()
    print("| criterion | normalisation | across layers (mean ± std) | " + " | ".join(c[7:] for c in within) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in within) + " |")
    for r in table.itertuples(index=False):
        values = list(r)
        print(f"| {values[0]} | {values[1]} | {values[2]:.2f} ± {values[3]:.2f} | "
              + " | ".join(f"{v:.2f}" for v in values[4:]) + " |")


if __name__ == "__main__":
    main()
