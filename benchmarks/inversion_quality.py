"""Does a filter extract a specific texture because it was trained, or would any convolution stack do?

Feature map inversion (docs/inversion.md) of a trained trunk against the same architecture with
random weights, on a CPU:

1. **Texture specificity.** For each layer, K filters are inverted on M content photos with each
   trunk; ``modules.inversion.texture.specificity`` scores how much the filter, rather than the
   photo, decides the texture (nearest-neighbour filter agreement against chance, and the ratio of
   same-filter/other-photo to same-photo/other-filter distances), on the whole descriptor and on
   each of its blocks (colour, orientation, spectrum).
2. **Colours and structure per layer.** Hue entropy, saturation and the high-frequency share of
   the same images, per layer and trunk (table and plot).
3. **The Gram explanation.** ``StyleTransfer`` with every method (energy, Gram, content only,
   sort-and-shift code) and the relative Gram, energy and content errors each image reaches.

The random twin is ``FeatureTrunk(checkpoint, pretrained=False)`` (Kaiming-normal convolutions), its
batch norms calibrated on training crops so its activations have the trained network's scale
(``--no-calibrate``: batch norms left at the identity). Seeds draw the start noise and the random
weights. Raw rows go to ``benchmarks/results/inversion_quality.csv`` (one row per inverted image,
with the raw descriptor, so scores can be recomputed) and ``inversion_style.csv``; done
(seed, trunk, photo) runs are skipped, so more seeds can be added later. Summaries are printed as
Markdown and written to ``inversion_specificity.csv``; the texture grid (layers × photos rows,
trained and random side by side) and the plot go to the run folder ``runs/inversion-quality/<time>``
and to W&B (offline), and a reduced copy of the grid and the plot to ``benchmarks/results/``.

    OMP_NUM_THREADS=1 affectlab fit -c experiments/inversion/train_trunk.yaml
    OMP_NUM_THREADS=1 python benchmarks/inversion_quality.py \\
        --checkpoint runs/inversion-train_trunk/<run>/checkpoints/last.ckpt --seeds 0,1
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from affectlab.datamodules.inversion import InversionImages, PhotoPatches
from affectlab.modules.inversion import texture
from affectlab.modules.inversion.denoise import from_unit
from affectlab.modules.inversion.grids import save_grid
from affectlab.modules.inversion.module import FeatureMapInversion, StyleTransfer
from affectlab.modules.inversion.trained import calibrate_batch_norm

RESULTS = Path(__file__).parent / "results"
BLOCKS = {"colour": 6, "orientation": 8, "spectrum": 6}
RAW = [f"{name}_{i}" for name, n in BLOCKS.items() for i in range(n)]
FIELDS = ["seed", "trunk", "layer", "filter", "photo", "size", "iterations", "stopped_at", "hue_entropy",
          "saturation", "hf_share", *RAW]
STYLE_FIELDS = ["seed", "trunk", "content", "style", "method", "size", "iterations", "gram", "energy", "content_error"]


def calibration_batches(size: int, count: int = 4, batch: int = 64) -> list[torch.Tensor]:
    data = PhotoPatches(image_size=size, train_size=1, val_size=count * batch, test_size=1, batch_size=batch)
    return [b["image"] for b in data.val_dataloader()]


def make_trunk(module, trunk: str, calibrate: bool, size: int):
    if trunk == "random" and calibrate:
        calibrate_batch_norm(module.trunk.sequential, calibration_batches(size))
    return module


def fit(module, data) -> None:
    from lightning.pytorch import Trainer

    Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, accelerator="cpu", devices=1,
            default_root_dir="/tmp/inversion-quality").fit(module, datamodule=data)


def read(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def append(path: Path, fields: list[str], rows: list[dict]) -> None:
    new = not path.is_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def invert_filters(args, seed: int, trunk: str, photo: str) -> tuple[list[dict], torch.Tensor]:
    module = FeatureMapInversion(network=args.checkpoint, pretrained=trunk == "trained", layers=args.layers,
                                 filters=args.filters, include_original=False, image_size=args.size, seed=seed)
    make_trunk(module, trunk, args.calibrate, args.size)
    fit(module, InversionImages(content=photo, image_size=args.size, iterations=args.iterations))
    images = module.results()                                              # (layer, filter) order
    raw = np.concatenate([texture.colour_features(images), texture.orientation_histogram(images),
                          texture.spectrum_bands(images)], axis=1)
    hue, sat, hf = texture.hue_entropy(images), texture.saturation(images), texture.high_frequency_share(images)
    rows, i = [], 0
    for layer in args.layers:
        for k in args.filters:
            rows.append({"seed": seed, "trunk": trunk, "layer": layer, "filter": k, "photo": photo, "size": args.size,
                         "iterations": args.iterations, "stopped_at": int(module.stopped_at[i]),
                         "hue_entropy": f"{hue[i]:.4f}", "saturation": f"{sat[i]:.4f}", "hf_share": f"{hf[i]:.5f}",
                         **{name: f"{v:.6f}" for name, v in zip(RAW, raw[i], strict=True)}})
            i += 1
    return rows, images


def style_runs(args, seed: int, trunk: str, content: str, style: str) -> list[dict]:
    module = StyleTransfer(network=args.checkpoint, pretrained=trunk == "trained", content_layer=args.content_layer,
                           style_layers=args.style_layers, image_size=args.size, seed=seed)
    make_trunk(module, trunk, args.calibrate, args.size)
    data = InversionImages(content=content, style=style, image_size=args.size, iterations=args.iterations)
    fit(module, data)
    losses = module.style_losses(module.image.detach())
    args.style_images[(seed, trunk, content, style)] = (module.results(), from_unit(data.images["style"][None]))
    return [{"seed": seed, "trunk": trunk, "content": content, "style": style, "method": method, "size": args.size,
             "iterations": args.iterations, "gram": f"{float(losses['gram'][i]):.6f}",
             "energy": f"{float(losses['energy'][i]):.6f}", "content_error": f"{float(losses['content'][i]):.6f}"}
            for i, method in enumerate(module.methods)]


def specificity_table(rows: list[dict[str, str]]) -> list[dict]:
    """Specificity per (trunk, layer, seed) on the whole descriptor and on each block."""
    groups: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault((r["trunk"], r["layer"], r["seed"]), []).append(r)
    out = []
    for (trunk, layer, seed), group in sorted(groups.items()):
        raw = np.array([[float(r[c]) for c in RAW] for r in group])
        z = (raw - raw.mean(0)) / np.maximum(raw.std(0), 1e-8)
        blocks, start = {}, 0
        for name, n in BLOCKS.items():
            blocks[name] = z[:, start:start + n] / np.sqrt(n)
            start += n
        blocks = {"all": np.concatenate(list(blocks.values()), 1), **blocks}
        filters, photos = [int(r["filter"]) for r in group], [r["photo"] for r in group]
        for name, features in blocks.items():
            s = texture.specificity(features, filters, photos)
            out.append({"trunk": trunk, "layer": layer, "seed": seed, "descriptor": name, **s})
    return out


def mean_std(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0:.2f}"


def report(args, rows, style_rows) -> str:
    lines = []
    table = specificity_table(rows)
    with (args.results / "inversion_specificity.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    seeds = sorted({r["seed"] for r in rows})
    lines += [f"Specificity (mean ± std over seeds {','.join(seeds)}; chance {table[0]['chance']:.2f}): "
              "nearest-neighbour filter agreement / distance ratio same-filter÷same-photo", "",
              "| layer | descriptor | trained agreement | random agreement | trained ratio | random ratio |",
              "|---|---|---|---|---|---|"]
    for layer in args.layers:
        for name in ("all", *BLOCKS):
            cell = {t: [r for r in table if r["trunk"] == t and r["layer"] == layer and r["descriptor"] == name]
                    for t in ("trained", "random")}
            lines.append(f"| {layer} | {name} | " + " | ".join(
                mean_std([r[m] for r in cell[t]]) for m in ("agreement", "ratio") for t in ("trained", "random")) + " |")
    lines += ["", "Colours and structure per layer (mean ± std over filters × photos × seeds):", "",
              "| layer | trained hue entropy (bits) | random hue entropy | trained saturation | random saturation "
              "| trained high-freq share | random high-freq share | iterations run (trained / random) |",
              "|---|---|---|---|---|---|---|---|"]
    stats = {}
    for layer in args.layers:
        cells = []
        for metric in ("hue_entropy", "saturation", "hf_share"):
            for t in ("trained", "random"):
                values = [float(r[metric]) for r in rows if r["trunk"] == t and r["layer"] == layer]
                stats[(metric, t, layer)] = values
                cells.append(mean_std(values))
        stops = [mean_std([float(r["stopped_at"]) or float(r["iterations"]) for r in rows if r["trunk"] == t and r["layer"] == layer])
                 for t in ("trained", "random")]
        lines.append(f"| {layer} | " + " | ".join(cells) + f" | {stops[0]} / {stops[1]} |")
    plot(args, stats, table)
    if style_rows:
        lines += ["", "Style transfer: relative errors reached (mean ± std over seeds × content/style pairs)", "",
                  "| trunk | method | Gram error | energy error | content error |", "|---|---|---|---|---|"]
        for t in ("trained", "random"):
            for method in dict.fromkeys(r["method"] for r in style_rows):
                sel = [r for r in style_rows if r["trunk"] == t and r["method"] == method]
                if not sel:
                    continue
                lines.append(f"| {t} | {method} | " + " | ".join(
                    mean_std([float(r[m]) for r in sel]) for m in ("gram", "energy", "content_error")) + " |")
    return "\n".join(lines)


def plot(args, stats, table) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    x = np.arange(len(args.layers))
    for ax, metric, title in zip(axes[:3], ("hue_entropy", "saturation", "hf_share"),
                                 ("hue entropy (bits)", "saturation", "high-frequency share"), strict=True):
        for offset, t in ((-0.1, "trained"), (0.1, "random")):
            values = [stats[(metric, t, layer)] for layer in args.layers]
            ax.errorbar(x + offset, [np.mean(v) for v in values], [np.std(v) for v in values], fmt="o-", label=t,
                        capsize=3)
        ax.set_xticks(x, args.layers)
        ax.set_title(title)
    ax = axes[3]
    for offset, t in ((-0.1, "trained"), (0.1, "random")):
        values = [[r["agreement"] for r in table if r["trunk"] == t and r["layer"] == layer and r["descriptor"] == "all"]
                  for layer in args.layers]
        ax.errorbar(x + offset, [np.mean(v) for v in values], [np.std(v) for v in values], fmt="o-", label=t,
                    capsize=3)
    ax.axhline(table[0]["chance"], color="grey", ls="--", label="chance")
    ax.set_xticks(x, args.layers)
    ax.set_ylim(0, 1.05)
    ax.set_title("nearest-neighbour filter agreement")
    axes[0].legend()
    fig.tight_layout()
    for folder in (args.run_dir, args.results):
        fig.savefig(folder / "inversion_quality.png", dpi=90)
    plt.close(fig)


def texture_grid(args, images: dict[tuple[str, str], torch.Tensor]) -> Path:
    """Rows (layer, photo), columns trained filters then random filters."""
    rows, labels, k = [], [], len(args.filters)
    for li, layer in enumerate(args.layers):
        for photo in args.photos:
            row = []
            for t in ("trained", "random"):
                batch = images[(t, photo)]
                row += [(batch[li * k + j], f"{t} {f}") for j, f in enumerate(args.filters)]
            rows.append(row)
            labels.append(f"{layer}\n{photo}")
    path = save_grid(rows, args.run_dir / "textures.png", labels,
                     title=f"filters {args.filters}: trained (left) vs random weights (right), seed {args.seeds[0]}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="last.ckpt of experiments/inversion/train_trunk.yaml")
    parser.add_argument("--photos", default="astronaut,coffee,chelsea")
    parser.add_argument("--filters", default="0,1,2,3")
    parser.add_argument("--layers", default="relu1_1,relu2_1,relu3_1")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--style-pairs", default="astronaut:coffee,chelsea:rocket", help="content:style,…; '' skips")
    parser.add_argument("--content-layer", default="relu2_2")
    parser.add_argument("--style-layers", default="relu1_1,relu2_1,relu3_1")
    parser.add_argument("--no-calibrate", dest="calibrate", action="store_false")
    parser.add_argument("--report-only", action="store_true", help="summarise the CSVs, invert nothing")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the CSVs, plot and grid copy")
    args = parser.parse_args()
    args.results.mkdir(parents=True, exist_ok=True)
    args.photos, args.layers = args.photos.split(","), args.layers.split(",")
    args.filters, args.seeds = [int(k) for k in args.filters.split(",")], [int(s) for s in args.seeds.split(",")]
    args.style_layers = args.style_layers.split(",")
    pairs = [tuple(p.split(":")) for p in args.style_pairs.split(",") if p]
    args.run_dir = Path("runs/inversion-quality") / time.strftime("%Y%m%d-%H%M%S")
    args.run_dir.mkdir(parents=True, exist_ok=True)
    args.style_images = {}
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")

    quality, style_csv = args.results / "inversion_quality.csv", args.results / "inversion_style.csv"
    done = {(r["seed"], r["trunk"], r["photo"], r["size"], r["iterations"]) for r in read(quality)}
    grid_images = {}
    if args.report_only:
        rows = [r for r in read(quality) if r["size"] == str(args.size) and r["iterations"] == str(args.iterations)]
        print(report(args, rows, read(style_csv)))
        return
    for seed in args.seeds:
        for trunk in ("trained", "random"):
            for photo in args.photos:
                key = (str(seed), trunk, photo, str(args.size), str(args.iterations))
                if key in done and seed != args.seeds[0]:
                    continue
                start = time.perf_counter()
                rows, images = invert_filters(args, seed, trunk, photo)
                if seed == args.seeds[0]:
                    grid_images[(trunk, photo)] = images
                if key not in done:
                    append(quality, FIELDS, rows)
                print(f"seed {seed} {trunk:7s} {photo:10s} {time.perf_counter() - start:6.1f} s", flush=True)
        done_style = {(r["seed"], r["trunk"], r["content"], r["style"]) for r in read(style_csv)}
        for trunk in ("trained", "random"):
            for content, style in pairs:
                if (str(seed), trunk, content, style) in done_style:
                    continue
                start = time.perf_counter()
                append(style_csv, STYLE_FIELDS, style_runs(args, seed, trunk, content, style))
                print(f"seed {seed} {trunk:7s} style {content}:{style} {time.perf_counter() - start:6.1f} s", flush=True)

    grid = texture_grid(args, grid_images)
    style_grid = None
    if args.style_images:
        rows = []
        for (_, trunk, _, _), (images, _) in args.style_images.items():
            rows.append([(images[i], f"{trunk} {m}") for i, m in enumerate(("energy", "Gram", "content", "sort-shift"))])
        style_grid = save_grid(rows, args.run_dir / "style.png",
                               [f"{c}:{s}\nseed {seed}" for (seed, t, c, s) in args.style_images])
    rows = [r for r in read(quality) if r["size"] == str(args.size) and r["iterations"] == str(args.iterations)]
    text = report(args, rows, read(style_csv))
    print(text)
    (args.run_dir / "summary.md").write_text(text + "\n")
    from PIL import Image

    with Image.open(grid) as image:                      # the repository's copy: ⅔ size, 256 colours (≈ 0.3 MB)
        image = image.convert("RGB")
        image.resize((image.width * 2 // 3, image.height * 2 // 3), Image.LANCZOS).quantize(256).save(
            args.results / "inversion_textures.png", optimize=True)
    try:
        import wandb

        run = wandb.init(project="affectlab", name="inversion/quality", dir=str(args.run_dir), mode="offline")
        run.log({"inversion/textures": wandb.Image(str(grid)), "inversion/quality": wandb.Image(
            str(args.run_dir / "inversion_quality.png")),
            **({"inversion/style": wandb.Image(str(style_grid))} if style_grid else {})})
        run.finish()
    except Exception as error:           # W&B is a copy of what the run folder holds
        print(f"W&B logging skipped: {error}")
    print(f"grid, plot and summary in {args.run_dir}")


if __name__ == "__main__":
    main()
