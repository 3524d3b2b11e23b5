"""What the input pipeline costs a training loop: images/s with the real DataLoader vs in-memory batches.

Writes ``--images`` files in FI's layout (``--unique`` generated photos of 500×375 to 1600×1200,
JPEG quality 90, hard-linked to fill the rest), then trains the flat baseline
(``EmotionClassifier``, random weights) with Lightning twice, in one process:

- ``loader``: the real VEA DataModule (``fast_decode``, ``--workers`` workers, pinned memory,
  persistent workers): decode, crop and collate on the CPU, standardise on the device;
- ``synthetic``: the same number of steps on uint8 batches already in (pinned) memory — the
  loop's speed with a free input pipeline.

Images/s are counted over the steps after ``--warmup``, with the device synchronised at both ends.
The ratio loader / synthetic is how much of the GPU the input pipeline leaves unused. bf16-mixed
and channels-last on CUDA. One CSV row per run goes to ``--csv``.

    python benchmarks/loader_gpu.py --device cuda --workers 14                         # ResNet-50, 224 px, batch 64
    python benchmarks/loader_gpu.py --device cpu --backbone resnet18 --size 64 --batch 8 --steps 3 --images 64 --unique 8
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from affectlab.datamodules.hierarchy import MIKELS  # noqa: E402
from affectlab.datamodules.samples.pictures import photo  # noqa: E402
from affectlab.datamodules.vea.fi import FI  # noqa: E402
from affectlab.modules.classifier import EmotionClassifier  # noqa: E402

SIZES = [(500, 375), (640, 480), (800, 600), (1024, 768), (1280, 960), (1600, 1200)]


def write_release(root: Path, images: int, unique: int) -> None:
    rng = np.random.default_rng(0)
    originals = []
    for i in range(unique):
        w, h = SIZES[i % len(SIZES)]
        path = root / f"photo_{i:04d}.jpg"
        photo(*((h, w) if i % 4 == 3 else (w, h)), rng).save(path, quality=90)
        originals.append(path)
    for i in range(images):
        folder = root / "emotion_dataset" / MIKELS[i % len(MIKELS)]
        folder.mkdir(parents=True, exist_ok=True)
        os.link(originals[i % unique], folder / f"{i:05d}.jpg")
    for path in originals:
        path.unlink()


class Timer(L.Callback):
    """Wall time of the training steps after ``warmup``, the device synchronised at both ends."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.end = 0.0
        self.images = 0

    def _sync(self, module: L.LightningModule) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            self._sync(module)
            self.start = time.perf_counter()
        if trainer.global_step >= self.warmup:
            self.images += len(batch["label"])

    def on_train_end(self, trainer, module) -> None:
        self._sync(module)
        self.end = time.perf_counter()

    @property
    def rate(self) -> float:
        return self.images / max(self.end - self.start, 1e-9)


class Batches(Dataset):
    """Pre-collated batches, served round and round (``batch_size=None``)."""

    def __init__(self, batches: list[dict], length: int) -> None:
        self.batches, self.length = batches, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        return self.batches[i % len(self.batches)]


def fit(args, datamodule=None, loader=None) -> float:
    model = EmotionClassifier(backbone=args.backbone, pretrained=False)
    if args.device == "cuda":
        model = model.to(memory_format=torch.channels_last)
    timer = Timer(args.warmup)
    trainer = L.Trainer(accelerator=args.device, devices=1, precision="bf16-mixed" if args.device == "cuda" else "32",
                        max_steps=args.warmup + args.steps, limit_val_batches=0, num_sanity_val_steps=0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[timer])
    trainer.fit(model, datamodule=datamodule, train_dataloaders=loader)
    return timer.rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cuda (default when there is one) or cpu")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--unique", type=int, default=240)
    parser.add_argument("--csv", default="benchmarks/results/loader_gpu.csv")
    args = parser.parse_args()
    if args.device is None:
        if not torch.cuda.is_available():
            print("no CUDA device: nothing measured (--device cpu runs it on the CPU)")
            return
        args.device = "cuda"
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        write_release(Path(tmp), args.images, args.unique)
        dm = FI(root=tmp, batch_size=args.batch, num_workers=args.workers, image_size=args.size,
                persistent_workers=args.workers > 0, cache_index=False)
        real = fit(args, datamodule=dm)
        dm.setup("fit")
        batches = []
        for batch in dm.train_dataloader():
            batch.pop("skipped", None)
            batches.append({k: v.pin_memory() if args.device == "cuda" and torch.is_tensor(v) else v
                            for k, v in batch.items()})
            if len(batches) == 4:
                break
        synthetic = fit(args, loader=DataLoader(Batches(batches, args.warmup + args.steps + 1), batch_size=None))
    row = {"device": device, "backbone": args.backbone, "size": args.size, "batch": args.batch,
           "workers": args.workers, "cpus": os.cpu_count(), "steps": args.steps,
           "loader_images_per_s": round(real, 1), "synthetic_images_per_s": round(synthetic, 1),
           "loader_over_synthetic": round(real / synthetic, 3)}
    out = Path(args.csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = not out.exists()
    with out.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    print("| device | backbone, size, batch | workers (of CPUs) | real DataLoader img/s | in-memory batches img/s | real / in-memory |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| {device} | {args.backbone}, {args.size} px, {args.batch} | {args.workers} (of {os.cpu_count()}) | "
          f"{real:.0f} | {synthetic:.0f} | {real / synthetic:.2f} |")


if __name__ == "__main__":
    main()
