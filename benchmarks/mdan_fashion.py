"""MDAN's hierarchy study on real data: Fashion-MNIST under clothing / footwear / bag (docs/mdan.md).

Trains the flat baseline and MDAN with its ablation rows (full, no MCCA, no LDCAM, global only,
local only) from the same config (``experiments/mdan/fashion.yaml``: ResNet-18 from scratch, 40 px,
2,500 training images, one epoch) over several training seeds, and evaluates each on the same 2,000
test images. Mask mode changes only what is reported (docs/mdan.md), so its row is the full
model's test pass with ``hierarchy_mode: mask``; the fused row likewise. One CSV row per run and
reported prediction in ``benchmarks/results/mdan_fashion.csv``; runs already there are skipped,
so adding seeds reruns nothing. ``--summary`` prints the mean ± std table of benchmarks/RESULTS.md.

    OMP_NUM_THREADS=1 python benchmarks/mdan_fashion.py --seeds 0 1 2   # add --reverse in a second process to halve the wall time
    python benchmarks/mdan_fashion.py --summary
"""

from __future__ import annotations

import argparse
import csv
import functools
import importlib
import logging
import os
import time
import warnings
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "experiments/mdan/fashion.yaml"
ROWS = REPO / "experiments/sweeps/mdan_ablation"
CSV = REPO / "benchmarks/results/mdan_fashion.csv"
#: trained variants: None is the flat baseline, the others are the sweep's ablation row files
VARIANTS = {"flat baseline": None, "MDAN full": "full", "no MCCA": "no_mcca", "no LDCAM": "no_ldcam",
            "global only": "global_only", "local only": "local_only"}
#: rows read off the full model's test pass: what hierarchy_mode / fuse report (training is the same)
REPORTED = {"mask mode": {"hierarchy_mode": "mask"}, "fused": {"fuse": True}}
FIELDS = ["variant", "seed", "fine_acc", "coarse_acc", "violation_rate", "fine_acc_local", "coarse_acc_local",
          "train_images", "epochs", "image_size", "test_images", "train_seconds", "cpu_seconds"]


def settings() -> tuple[dict, dict, dict]:
    config = yaml.safe_load(CONFIG.read_text())
    return config["model"]["init_args"], config["data"]["init_args"], config["trainer"]


def run(variant: str, seed: int) -> list[dict]:
    import lightning as L
    import torch

    from affectlab.datamodules.fashion_mnist import FashionMNIST
    from affectlab.modules.classifier import EmotionClassifier
    from affectlab.modules.mdan import MDAN

    torch.set_num_threads(1)
    model_args, data_args, trainer_args = settings()
    L.seed_everything(seed, verbose=False)
    data = FashionMNIST(**data_args)
    spec = model_args["optimizer"]  # class_path + init_args, as the CLI reads it
    module, name = spec["class_path"].rsplit(".", 1)
    optimizer = functools.partial(getattr(importlib.import_module(module), name), **spec.get("init_args", {}))
    model_args = {**model_args, "optimizer": optimizer}
    common = {k: model_args[k] for k in ("backbone", "pretrained", "weights", "backbone_lr_mult", "optimizer",
                                          "lr_scheduler")}
    if VARIANTS[variant] is None:
        model = EmotionClassifier(data.taxonomy_spec, in_channels=data.num_channels, **common)
    else:
        switches = yaml.safe_load((ROWS / f"{VARIANTS[variant]}.yaml").read_text())["model"]["init_args"]
        model = MDAN(data.taxonomy_spec, in_channels=data.num_channels, **{**model_args, **switches})
    trainer = L.Trainer(max_epochs=trainer_args["max_epochs"], accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    passes = {variant: {}} | ({name: hp for name, hp in REPORTED.items()} if VARIANTS[variant] == "full" else {})
    rows = []
    trained = {k: model.hparams[k] for k in ("hierarchy_mode", "fuse") if k in model.hparams}
    for name, overrides in passes.items():
        model.hparams.update({**trained, **overrides})
        metrics = trainer.test(model, datamodule=data, verbose=False)[0]
        rows.append({
            "variant": name, "seed": seed, "fine_acc": metrics["test/acc_l2"], "coarse_acc": metrics["test/acc_l1"],
            "violation_rate": metrics["test/violation_rate"],
            "fine_acc_local": metrics.get("test/acc_l2_local", ""), "coarse_acc_local": metrics.get("test/acc_l1_local", ""),
            "train_images": len(data.datasets["train"]), "epochs": trainer_args["max_epochs"],
            "image_size": data_args["image_size"], "test_images": len(data.datasets["test"]),
            "train_seconds": round(seconds, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
        })
    return rows


def done() -> set[tuple[str, int]]:
    if not CSV.exists():
        return set()
    with CSV.open() as f:
        return {(row["variant"], int(row["seed"])) for row in csv.DictReader(f)}


def summary() -> str:
    """Markdown table: mean ± std over seeds per variant, in the order of VARIANTS then REPORTED."""
    import numpy as np

    with CSV.open() as f:
        rows = list(csv.DictReader(f))
    lines = ["| variant | seeds | fine accuracy | coarse accuracy | violation rate |", "| --- | --- | --- | --- | --- |"]
    for variant in [*VARIANTS, *REPORTED]:
        mine = [r for r in rows if r["variant"] == variant]
        if not mine:
            continue
        cells = []
        for key in ("fine_acc", "coarse_acc", "violation_rate"):
            values = np.array([float(r[key]) for r in mine])
            cells.append(f"{100 * values.mean():.1f} ± {100 * values.std(ddof=1) if len(values) > 1 else 0:.1f}")
        lines.append(f"| {variant} | {len(mine)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--summary", action="store_true", help="print the table from the CSV and stop")
    parser.add_argument("--reverse", action="store_true",
                        help="take the variants last to first: a second process per seed meets the first halfway")
    args = parser.parse_args()
    if args.summary:
        print(summary())
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    CSV.parent.mkdir(parents=True, exist_ok=True)
    claims = CSV.parent / ".claims"
    claims.mkdir(exist_ok=True)
    for seed in args.seeds:  # seed-major: an interrupted study still has whole seeds of every variant
        for variant in (reversed(args.variants) if args.reverse else args.variants):
            if (variant, seed) in done():  # re-read: processes running other seeds share the file
                continue
            claim = claims / f"{VARIANTS[variant] or 'flat'}-{seed}"
            try:  # one process per run: the claim is a file created exclusively, removed once the row is written
                claim.open("x").close()
            except FileExistsError:
                continue
            try:
                rows = run(variant, seed)
                new = not CSV.exists()
                with CSV.open("a", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=FIELDS)
                    if new:
                        writer.writeheader()
                    writer.writerows(rows)
            finally:
                claim.unlink(missing_ok=True)
            print(f"{variant} seed {seed}: " + ", ".join(f"{k}={rows[0][k]}" for k in FIELDS[2:5]) +
                  f", {rows[0]['train_seconds']} s", flush=True)


if __name__ == "__main__":
    main()
