"""Images/s per worker core of the VEA training sample, against the JPEG-decode floors, in one run.

Generates ``--images`` photos (``datamodules/samples/pictures.py``'s ``photo``: tiles of real photos at
their native pixel scale) at camera sizes from 500×375 to 1600×1200, JPEG quality 90, in FI's
layout, and pre-shrunk copies of them (``affectlab-data shrink``, short side 256 and 512). Then,
single-threaded (one worker core), for each crop size it times one pass over every image of:

- floors: ``pil_full`` (PIL decode at full size), ``pil_draft`` (PIL decode with ``draft`` to
  the crop size), ``tv_decode`` (torchvision's ``decode_jpeg`` of the file's bytes);
- ``before``: the training sample as it was — full decode, torchvision crop and flip, float
  conversion and ImageNet normalisation on the worker;
- ``reference``: ``fast_decode=False`` (full decode, torchvision crop and flip, uint8 out);
- ``fast``: ``fast_decode=True`` (reduced-scale decode where the crop allows, uint8 out);
- ``fast_shrunk256`` / ``fast_shrunk512``: ``fast`` reading the pre-shrunk copies.

Every training sample is a real ``ImageListDataset`` item of the seeded training order. Each
round goes image by image and runs every method on that image in a fresh random order, so
machine load (shared cores) hits all alike; a ratio is taken within each round and the median
over rounds is reported. One CSV row per round,
size and method goes to ``--csv``. Targets: ``fast`` ≥ 0.8 × ``pil_full`` at 448 px; the shrunk
copy ≥ 2 × the original (``fast``) at 224 px. It also reports how far ``fast`` is from
``reference`` (PSNR, mean |Δ| per crop) beside the difference bilinear vs bicubic resampling makes.

    OMP_NUM_THREADS=1 python benchmarks/data_loader.py [--images 60] [--rounds 5]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402
from torchvision.io import decode_jpeg, read_file  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

from affectlab.datamodules.crops import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from affectlab.datamodules.hierarchy import MIKELS  # noqa: E402
from affectlab.datamodules.images import load_rgb  # noqa: E402
from affectlab.datamodules.samples.pictures import photo  # noqa: E402
from affectlab.datamodules.shrink import shrink_release  # noqa: E402
from affectlab.datamodules.vea.base import ImageListDataset  # noqa: E402
from affectlab.datamodules.vea.fi import FI  # noqa: E402

SIZES = [(500, 375), (640, 480), (800, 600), (1024, 768), (1280, 960), (1600, 1200)]


def write_release(root: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        if i % 4 == 3:  # some portraits
            w, h = h, w
        folder = root / "emotion_dataset" / MIKELS[i % len(MIKELS)]
        folder.mkdir(parents=True, exist_ok=True)
        photo(w, h, rng).save(folder / f"{i:04d}.jpg", quality=90)


def before_transform(size: int) -> v2.Compose:
    """The training transform as it was: crop and flip, then float and normalise on the worker."""
    return v2.Compose([v2.ToImage(), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def dataset(root: Path, size: int, fast: bool, before: bool = False) -> ImageListDataset:
    dm = FI(root=str(root), image_size=size, num_workers=0, cache_index=False, fast_decode=fast)
    dm.setup("fit")
    ds = dm.dataset("train", train=True)
    if before:
        ds.transform = before_transform(size)
    ds.samples = sorted(s for split in dm.splits.values() for s in split)  # every file, the same order in every copy
    return ds


def floors(paths: list[Path], size: int) -> dict:
    """Decode one file (by index) without any transform."""
    def pil_full(i):
        with Image.open(paths[i]) as im:
            im.load()

    def pil_draft(i):
        with Image.open(paths[i]) as im:
            im.draft("RGB", (size, size))
            im.load()

    def tv_decode(i):
        decode_jpeg(read_file(str(paths[i])))

    return {"pil_full": pil_full, "pil_draft": pil_draft, "tv_decode": tv_decode}


def draw_seed(index: int, epoch: int) -> int:
    """The augmentation seed of image ``index`` in ``epoch`` (the dataset takes ``(index, seed)``)."""
    return epoch * 1_000_003 + index


def sample(ds: ImageListDataset, epoch: int):
    """One training item (by index), its crop and flip drawn from ``draw_seed(index, epoch)``."""
    def run(i):
        assert "skipped" not in ds[(i, draw_seed(i, epoch))]
    return run


def fidelity(fast: ImageListDataset, reference: ImageListDataset, size: int) -> dict:
    """Per crop: fast vs reference, and (the yardstick) reference bilinear vs bicubic."""
    bicubic = v2.Compose([v2.ToImage(), v2.RandomResizedCrop(size, antialias=True,
                                                             interpolation=v2.InterpolationMode.BICUBIC),
                          v2.RandomHorizontalFlip()])

    def stats(a, b):
        d = a.float() - b.float()
        mse = (d**2).mean().item()
        return (99.0 if mse == 0 else 10 * np.log10(255**2 / mse)), d.abs().mean().item()

    ours, yard = [], []
    for i in range(len(fast)):
        f, r = fast[(i, draw_seed(i, 0))]["image"], reference[(i, draw_seed(i, 0))]["image"]
        ours.append(stats(f, r))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(draw_seed(i, 0))  # the reference's own crop box and flip
            b = bicubic(load_rgb(reference.root / reference.samples[i][0]))
        yard.append(stats(b, r))
    ours, yard = np.array(ours), np.array(yard)
    return {"psnr_min": ours[:, 0].min(), "psnr_median": np.median(ours[:, 0]), "mae_max": ours[:, 1].max(),
            "mae_mean": ours[:, 1].mean(), "bicubic_psnr_median": np.median(yard[:, 0]),
            "bicubic_mae_mean": yard[:, 1].mean()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 448])
    parser.add_argument("--csv", default="benchmarks/results/data_loader.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_release(tmp / "original", args.images)
        shrink_release(tmp / "original", tmp / "shrunk256", 256, progress=False)
        shrink_release(tmp / "original", tmp / "shrunk512", 512, progress=False)
        paths = sorted((tmp / "original").rglob("*.jpg"))
        methods = {}
        for size in args.sizes:
            methods.update({(size, k): f for k, f in floors(paths, size).items()})
            methods[(size, "before")] = sample(dataset(tmp / "original", size, False, before=True), 1)
            methods[(size, "reference")] = sample(dataset(tmp / "original", size, False), 1)
            methods[(size, "fast")] = sample(dataset(tmp / "original", size, True), 1)
            for side in (256, 512):
                methods[(size, f"fast_shrunk{side}")] = sample(dataset(tmp / f"shrunk{side}", size, True), 1)
        n = len(paths)
        for run in methods.values():  # warm the file cache and the allocators
            for i in range(n):
                run(i)
        rows, rng = [], random.Random(0)
        for r in range(args.rounds):
            # Image by image, every method in a fresh random order: load swings hit all methods alike.
            spent = dict.fromkeys(methods, 0.0)
            for i in range(n):
                order = list(methods)
                rng.shuffle(order)
                for key in order:
                    start = time.perf_counter()
                    methods[key](i)
                    spent[key] += time.perf_counter() - start
            rates = {key: n / t for key, t in spent.items()}
            for (size, name), rate in rates.items():
                rows.append({"round": r, "size": size, "method": name, "images_per_s": round(rate, 2),
                             "ratio_to_pil_full": round(rate / rates[(size, "pil_full")], 4),
                             "ratio_to_fast": round(rate / rates[(size, "fast")], 4),
                             "images": n, "load_average": round(os.getloadavg()[0], 2)})
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        out = Path(args.csv)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"{n} photos 500×375…1600×1200 (JPEG q90), 1 thread, {args.rounds} interleaved rounds; "
              f"median over rounds; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
              f"(the ratios fall when other processes share the core)")
        print("| size | method | images/s | × pil_full | × fast |")
        print("| --- | --- | --- | --- | --- |")
        for size, name in methods:
            mine = [x for x in rows if x["size"] == size and x["method"] == name]
            med = {k: statistics.median(x[k] for x in mine) for k in ("images_per_s", "ratio_to_pil_full", "ratio_to_fast")}
            print(f"| {size} | {name} | {med['images_per_s']:.0f} | {med['ratio_to_pil_full']:.2f} | "
                  f"{med['ratio_to_fast']:.2f} |")
        print("\nfast vs reference per crop (epoch 0, every photo) and the yardstick bilinear vs bicubic:")
        for size in args.sizes:
            fid = fidelity(dataset(tmp / "original", size, True), dataset(tmp / "original", size, False), size)
            print(f"  {size} px: PSNR min {fid['psnr_min']:.1f} dB, median {fid['psnr_median']:.1f} dB; "
                  f"mean |Δ| max {fid['mae_max']:.2f}, mean {fid['mae_mean']:.2f} grey levels — bilinear vs bicubic: "
                  f"PSNR median {fid['bicubic_psnr_median']:.1f} dB, mean |Δ| {fid['bicubic_mae_mean']:.2f}")


if __name__ == "__main__":
    main()
