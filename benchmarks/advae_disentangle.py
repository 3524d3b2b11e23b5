"""AD-VAE disentanglement, attribute control on rare combinations, and stage 2 (docs/advae.md).

Synthetic faces in CelebA's layout whose training attributes are correlated as in real CelebA
(``write_sample(CelebA, root, correlated=True)``: no young or female gray-haired face, few rosy-cheeked
men) and whose validation attributes are independent. For each (content_from, λ_adv, adv_steps,
seed) not yet in the CSV, stage 1 is trained and measured:

- a fresh MLP probe on frozen z (train split) scored on the validation split against the
  majority rate (``probe_gap``: mean over the 8 attributes; ``gap_<name>`` per attribute), and
  the same probe cross-fitted within the validation faces (``probe_gap_val_cv``, two folds), which
  the shift from correlated to independent attributes cannot bias;
- attribute control scored by a *judge*, a CNN trained on separate faces with independent
  attributes (so it has no correlation to lean on): the requested attribute found in the
  reconstruction, over all requests, over requests whose full attribute vector is rare or unseen
  in training (≤ 0.5 % of training faces), and over the others; with the chance floor (a
  generator that ignores the request) and the chance-corrected value;
- the module's own control metric and style transfer (background follows the style photo).

``--stage2`` then trains stage 2 on each such stage-1 checkpoint and measures the judge's control
on photos synthesised from drawings (against the stage-1 reconstruction, the upper bound), the
diversity of sampled styles in the background against the face, and a probe on the XDoG drawings.

    OMP_NUM_THREADS=1 python benchmarks/advae_disentangle.py --lambdas 0 30 --seeds 0 1 2

One CSV row per run in ``benchmarks/results/advae_stage1.csv`` and ``advae_stage2.csv``.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import logging
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from affectlab.datamodules.celeba import CelebA  # noqa: E402
from affectlab.datamodules.samples import write_sample  # noqa: E402
from affectlab.modules.advae import ADVAEStage1, ADVAEStage2  # noqa: E402
from affectlab.modules.advae.media import (  # noqa: E402
    control_floor_hits,
    control_hits,
    corrected_control,
    settings,
    with_attribute,
)
from affectlab.modules.advae.networks import AttributeClassifier  # noqa: E402
from affectlab.modules.advae.probe import fit_probe  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SMALL = {"content_dim": 16, "style_dim": 8, "width": 16}
RARE = 0.005  # a requested attribute vector is rare when at most this share of training faces has it


def quiet() -> None:
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def trainer(root: Path, steps: int) -> L.Trainer:
    return L.Trainer(max_steps=steps, logger=False, enable_progress_bar=False, enable_model_summary=False,
                     enable_checkpointing=False, limit_val_batches=0, num_sanity_val_steps=0, accelerator="cpu",
                     devices=1, default_root_dir=str(root))


def batches(dm: CelebA, split: str) -> list[dict]:
    """Every batch of a split in a fixed order, with its drawings."""
    return [dm.on_after_batch_transfer(b, 0) for b in dm._loader(split) if len(b["image"])]


# -- the judge -----------------------------------------------------------------------------------
def judge(work: Path, steps: int = 600) -> tuple[AttributeClassifier, list[float]]:
    """A photo classifier trained on faces with independent attributes (cached): scores the outputs."""
    path = work / "judge.pt"
    root = work / "judge_faces"
    if not (root / "list_attr_celeba.txt").exists():
        write_sample(CelebA, root, counts=(1536, 256, 8), seed=99)
    dm = CelebA(root=str(root), image_size=32, batch_size=64, num_workers=0, hflip=True, drawings=False)
    dm.setup("fit")
    net = AttributeClassifier(len(dm.attributes), 32)
    if path.exists():
        net.load_state_dict(torch.load(path))
    else:
        torch.manual_seed(99)
        optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
        step = 0
        while step < steps:
            for batch in dm.train_dataloader():
                loss = F.binary_cross_entropy_with_logits(net(batch["image"]), batch["attributes"])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                step += 1
                if step >= steps:
                    break
        torch.save(net.state_dict(), path)
    net.eval()
    with torch.no_grad():
        hits = torch.cat([(net(b["image"]) > 0) == b["attributes"].bool() for b in batches(dm, "val")])
    return net, hits.float().mean(0).tolist()


# -- stage 1 -------------------------------------------------------------------------------------
@torch.no_grad()
def measure_stage1(model: ADVAEStage1, dm: CelebA, referee: AttributeClassifier) -> dict[str, float]:
    model.eval()
    names = model.attributes
    train, val = batches(dm, "train"), batches(dm, "val")
    train_vectors = torch.cat([b["attributes"] for b in train])
    out: dict[str, float] = {}

    def latents(bs):
        zs = [torch.cat([g.mu for g in model.encode(b["image"], b.get("drawing"))], 1) for b in bs]
        return torch.cat(zs), torch.cat([b["attributes"] for b in bs])

    z_train, a_train = latents(train)
    z_val, a_val = latents(val)
    probe = fit_probe(z_train, a_train, z_val, a_val, names)
    out.update({k.replace("probe_gap/", "gap_"): round(v, 4) for k, v in probe.summary().items()})
    # The same probe fitted and scored within the (independent) validation faces, two folds: free of
    # the shift between correlated training and independent validation attributes.
    half = len(z_val) // 2
    folds = [fit_probe(z_val[:half], a_val[:half], z_val[half:], a_val[half:], names),
             fit_probe(z_val[half:], a_val[half:], z_val[:half], a_val[:half], names)]
    out["probe_gap_val_cv"] = round(sum(f.gap.mean().item() for f in folds) / 2, 4)

    mse, own_hits, own_floor, j_hits, j_floor, rare_hits, common_hits, rare_all = [], [], [], [], [], [], [], []
    follows = []
    for b in val:
        x, a, d = b["image"], b["attributes"], b.get("drawing")
        content, style = model.encode(x, d)
        z = torch.cat([content.mu, style.mu], 1)
        recon = model.decode(z, a)
        mse.append(F.mse_loss(recon, x, reduction="none").flatten(1).mean(1))
        own_hits.append(control_hits(model.classifier, lambda r, z=z: model.decode(z, r), a, names))
        own_floor.append(control_floor_hits(model.classifier, recon, a, names))
        j_floor.append(control_floor_hits(referee, recon, a, names))
        for name, value in settings(names):
            requested = with_attribute(a, names, name, value)
            verdict = referee(model.decode(z, requested)) > 0
            hit = verdict[:, names.index(name)] == bool(value)
            seen = (requested[:, None, :] == train_vectors[None]).all(-1).float().mean(1)
            rare = seen <= RARE
            j_hits.append(hit)
            rare_hits.append(hit[rare])
            common_hits.append(hit[~rare])
            rare_all.append((verdict == requested.bool()).all(1)[rare])
        other = torch.roll(torch.arange(len(x)), 1)
        moved = model.decode(torch.cat([content.mu, style.mu[other]], 1), a)
        corner = lambda t: t[..., :4, :4].mean((-1, -2))  # noqa: E731 — the background
        follows.append((corner(moved) - corner(x[other])).norm(dim=1) < (corner(moved) - corner(x)).norm(dim=1))
    mean = lambda parts: torch.cat(parts).float().mean().item()  # noqa: E731
    own, own_chance, jc, jc_chance = mean(own_hits), mean(own_floor), mean(j_hits), mean(j_floor)
    out.update(recon_mse=round(mean(mse), 5), control=round(own, 4), control_floor=round(own_chance, 4),
               control_corrected=round(corrected_control(own, own_chance).item(), 4),
               judge_control=round(jc, 4), judge_floor=round(jc_chance, 4),
               judge_corrected=round(corrected_control(jc, jc_chance).item(), 4),
               judge_control_rare=round(mean(rare_hits), 4), judge_control_common=round(mean(common_hits), 4),
               judge_all_rare=round(mean(rare_all), 4), rare_requests=int(torch.cat(rare_hits).numel()),
               style_transfer=round(mean(follows), 4))
    return out


@torch.no_grad()
def rare_grid(models: dict[str, ADVAEStage1], dm: CelebA, path: Path, n: int = 8) -> None:
    """Gray hair asked on young or female validation faces (never seen in training), per model."""
    names = dm.attributes
    b = batches(dm, "val")[0]
    keep = ((b["attributes"][:, names.index("Male")] == 0) | (b["attributes"][:, names.index("Young")] == 1))
    keep &= b["attributes"][:, names.index("Gray_Hair")] == 0
    x, a = b["image"][keep][:n], b["attributes"][keep][:n]
    rows = [x]
    for model in models.values():
        model.eval()
        content, style = model.encode(x, b["drawing"][keep][:n] if "drawing" in b else None)
        rows.append(model.decode(torch.cat([content.mu, style.mu], 1), with_attribute(a, names, "Gray_Hair", 1.0)))
    grid = make_grid(torch.cat(rows), nrow=len(x), padding=1, pad_value=1.0)
    grid = F.interpolate(grid[None], scale_factor=3, mode="nearest")[0]  # 32-px faces, big enough to see
    names = [name.replace("λ=", "lambda_adv = ") for name in models]  # the default font has no λ
    labelled(grid, ["photo"] + [f"{name}:\ngray hair asked" for name in names], path)


def labelled(grid: torch.Tensor, labels: list[str], path: Path) -> None:
    """Save a grid of ``len(labels)`` rows with each row's label in a margin on its left."""
    from PIL import Image, ImageDraw

    image = Image.fromarray((grid.clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy())
    margin = 150
    canvas = Image.new("RGB", (image.width + margin, image.height), "white")
    canvas.paste(image, (margin, 0))
    draw = ImageDraw.Draw(canvas)
    row = image.height / len(labels)
    for i, label in enumerate(labels):
        draw.text((6, int((i + 0.5) * row) - 12), label, fill="black")
    canvas.save(path)


# -- stage 2 -------------------------------------------------------------------------------------
@torch.no_grad()
def measure_stage2(model: ADVAEStage2, dm: CelebA, referee: AttributeClassifier, styles: int = 8) -> dict[str, float]:
    model.eval()
    names = model.attributes
    hits, floor, bg, face = [], [], [], []
    generator = torch.Generator().manual_seed(0)
    for b in batches(dm, "val"):
        x, a, d = b["image"], b["attributes"], b["drawing"]
        style = model.style_of(x)
        synthesis = model.synthesise(d, a, style)
        hits.append(control_hits(referee, lambda r, d=d, style=style: model.synthesise(d, r, style), a, names))
        floor.append(control_floor_hits(referee, synthesis, a, names))
        sampled = torch.stack([model.synthesise(d, a, model.prior_styles(1, generator).expand_as(style))
                               for _ in range(styles)])  # S×B×3×H×W
        spread = sampled.std(0).mean(1)  # B×H×W: per-pixel std across sampled styles
        side = spread.shape[-1]
        edge = max(1, side // 8)  # left and right columns: background on every face
        bg.append(torch.cat([spread[:, :, :edge], spread[:, :, -edge:]], -1).flatten(1).mean(1))
        face.append(spread[:, int(0.5 * side):int(0.7 * side), int(0.4 * side):int(0.6 * side)].flatten(1).mean(1))
    mean = lambda parts: torch.cat(parts).float().mean().item()  # noqa: E731
    acc, chance = mean(hits), mean(floor)
    return {"judge_control": round(acc, 4), "judge_floor": round(chance, 4),
            "judge_corrected": round(corrected_control(acc, chance).item(), 4),
            "style_std_background": round(mean(bg), 4), "style_std_face": round(mean(face), 4)}


def drawing_probe(dm: CelebA, seed: int, steps: int = 300) -> dict[str, float]:
    """A fresh CNN on the XDoG drawings (train split), scored on validation against the majority rate."""
    torch.manual_seed(seed)
    net = AttributeClassifier(len(dm.attributes), dm.image_size)
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    train = batches(dm, "train")
    for step in range(steps):
        b = train[step % len(train)]
        loss = F.binary_cross_entropy_with_logits(net(b["drawing"].expand(-1, 3, -1, -1)), b["attributes"])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    net.eval()
    val = batches(dm, "val")
    with torch.no_grad():
        acc = torch.cat([(net(b["drawing"].expand(-1, 3, -1, -1)) > 0) == b["attributes"].bool() for b in val])
    rate = torch.cat([b["attributes"] for b in val]).mean(0)
    gap = acc.float().mean(0) - torch.maximum(rate, 1 - rate)
    out = {"drawing_probe_gap": round(gap.mean().item(), 4)}
    out.update({f"drawing_gap_{n}": round(g.item(), 4) for n, g in zip(dm.attributes, gap, strict=True)})
    return out


# -- bookkeeping ---------------------------------------------------------------------------------
def done(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open())) if path.exists() else []


#: the value of a column for rows written before it existed
UNRECORDED = {"adv_memory": "0", "label_noise": "0.0"}


def matches(row: dict[str, str], key: dict) -> bool:
    return all((row.get(k) or UNRECORDED.get(k)) == str(v) for k, v in key.items())


def append(path: Path, row: dict, replace: dict | None = None) -> None:
    """Add a row (the columns are the union over rows), or update the row matching ``replace``.

    A lock lets two studies share the file.
    """
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = done(path)
        new = {k: str(v) for k, v in row.items()}
        matching = [r for r in rows if replace and matches(r, replace)]
        if matching:
            matching[0].update(new)
        else:
            rows.append(new)
        fields = list(dict.fromkeys(k for r in rows for k in r))
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fields, restval="")
            writer.writeheader()
            writer.writerows(rows)


def table(path: Path, columns: list[str], by: list[str]) -> str:
    """Mean ± std over seeds of ``columns`` per setting ``by``, as a markdown table."""
    groups: dict[tuple, list[dict]] = {}
    for row in done(path):
        groups.setdefault(tuple(row.get(k) or UNRECORDED.get(k, "") for k in by), []).append(row)
    lines = ["| " + " | ".join(by + ["seeds"] + columns) + " |", "|" + " --- |" * (len(by) + 1 + len(columns))]
    for key, rows in groups.items():
        cells = []
        for column in columns:
            values = torch.tensor([float(r[column]) for r in rows if r.get(column)])
            if len(values) == 0:
                cells.append("—")
            elif len(values) == 1:
                cells.append(f"{values[0]:.3f}")
            else:
                cells.append(f"{values.mean():.3f} ± {values.std():.3f}")
        lines.append("| " + " | ".join(list(key) + [str(len(rows))] + cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 30.0])
    parser.add_argument("--adv-steps", type=int, nargs="+", default=[3])
    parser.add_argument("--decor", type=float, default=0.0, help="lambda_decor of the adversarial runs")
    parser.add_argument("--adv-memory", type=int, default=0, help="adv_memory of the adversarial runs")
    parser.add_argument("--content-from", nargs="+", default=["photo"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--stage2-steps", type=int, default=160)
    parser.add_argument("--train", type=int, default=512)
    parser.add_argument("--label-noise", type=float, default=0.0,
                        help="share of training labels flipped (the faces keep their true attributes)")
    parser.add_argument("--stage2", action="store_true", help="train and measure stage 2 on the stage-1 runs")
    parser.add_argument("--table", action="store_true", help="print the markdown tables of the CSVs and stop")
    parser.add_argument("--remeasure", action="store_true", help="measure existing checkpoints again (new columns)")
    parser.add_argument("--grid", action="store_true", help="rare-combination grid of seed 0 (λ=0 against the rest)")
    parser.add_argument("--work", default="/tmp/advae_study", help="data, judge and checkpoints (not results)")
    args = parser.parse_args()
    if args.table:
        by = ["content_from", "label_noise", "lambda_adv", "adv_steps", "lambda_decor", "adv_memory"]
        print(table(RESULTS / "advae_stage1.csv", ["probe_gap", "probe_gap_val_cv", "gap_Pale_Skin", "gap_Male",
                                                  "recon_mse", "judge_control", "judge_corrected",
                                                  "judge_control_rare", "judge_control_common", "control_corrected",
                                                  "style_transfer"], by))
        print()
        print(table(RESULTS / "advae_stage2.csv", ["judge_control", "judge_corrected", "style_std_background",
                                                  "style_std_face", "drawing_probe_gap", "drawing_gap_Male",
                                                  "drawing_gap_Rosy_Cheeks", "drawing_gap_Young",
                                                  "drawing_gap_Pale_Skin"], by))
        return
    torch.set_num_threads(1)
    quiet()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    root = work / (f"faces_{args.train}" + (f"_noise{args.label_noise:g}" if args.label_noise else ""))
    if not (root / "list_attr_celeba.txt").exists():
        write_sample(CelebA, root, counts=(args.train, 128, 8), correlated=True, label_noise=args.label_noise)
    dm = CelebA(root=str(root), image_size=32, batch_size=32, num_workers=0, hflip=True, cache_drawings=True)
    dm.setup("fit")
    referee, referee_acc = judge(work)
    print("judge accuracy on independent faces:", [round(v, 3) for v in referee_acc], flush=True)
    stage1_csv, stage2_csv = RESULTS / "advae_stage1.csv", RESULTS / "advae_stage2.csv"
    models: dict[str, ADVAEStage1] = {}
    for content_from in args.content_from:
        for lam in args.lambdas:
            for adv_steps in args.adv_steps if lam else [1]:
                for seed in args.seeds:
                    decor = args.decor if lam else 0.0
                    memory = args.adv_memory if lam else 0
                    key = dict(content_from=content_from, lambda_adv=lam, adv_steps=adv_steps, lambda_decor=decor,
                               adv_memory=memory, label_noise=args.label_noise, seed=seed, steps=args.steps,
                               train=args.train)
                    tag = (f"{content_from}_l{lam:g}_k{adv_steps}_d{decor:g}_s{seed}_n{args.steps}_t{args.train}"
                           + (f"_m{memory}" if memory else "") + (f"_e{args.label_noise:g}" if args.label_noise else ""))
                    ckpt = work / f"{tag}.ckpt"
                    have = any(matches(r, key) for r in done(stage1_csv))
                    if have and ckpt.exists():
                        model = ADVAEStage1.load_from_checkpoint(ckpt, map_location="cpu")
                        if args.remeasure:
                            append(stage1_csv, measure_stage1(model, dm, referee), replace=key)
                            print("remeasured", tag, flush=True)
                        if args.grid and seed == 0:
                            models[f"λ={lam:g}"] = model
                    elif not have:
                        L.seed_everything(seed, verbose=False)
                        model = ADVAEStage1(attributes=dm.attributes, image_size=32, kl_warmup_steps=100,
                                            adv_warmup_steps=100, lambda_adv=lam, adv_steps=adv_steps, lambda_decor=decor,
                                            adv_memory=memory,
                                            content_from=content_from, probe_every_n_epochs=0, **SMALL)
                        start = time.time()
                        fit = trainer(work / tag, args.steps)
                        fit.fit(model, dm)
                        seconds = time.time() - start
                        fit.save_checkpoint(ckpt)
                        row = {**key, **measure_stage1(model, dm, referee), "train_seconds": round(seconds, 1)}
                        append(stage1_csv, row)
                        print(row, flush=True)
                        if args.grid and seed == 0:
                            models[f"λ={lam:g}"] = model
                    if args.stage2 and ckpt.exists():
                        have2 = any(matches(r, key) for r in done(stage2_csv))
                        if not have2:
                            L.seed_everything(seed, verbose=False)
                            stage2 = ADVAEStage2(stage1_checkpoint=str(ckpt), attributes=dm.attributes,
                                                 image_size=32, width=16)
                            trainer(work / f"{tag}_s2", args.stage2_steps).fit(stage2, dm)
                            row = {**key, "stage2_steps": args.stage2_steps,
                                   **measure_stage2(stage2, dm, referee), **drawing_probe(dm, seed)}
                            append(stage2_csv, row)
                            print(row, flush=True)
        if args.grid and len(models) > 1:
            noise = f"_noise{args.label_noise:g}" if args.label_noise else ""
            path = RESULTS / f"advae_rare_gray_{content_from}{noise}.png"
            rare_grid(models, dm, path)
            print(f"grid (rows: photo, then Gray_Hair asked with {', '.join(models)}) written to {path}")
            models = {}


if __name__ == "__main__":
    main()
