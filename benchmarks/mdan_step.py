"""MDAN's training step against the flat baseline's, on the same backbone, batch and input size.

A step is forward, backward and the optimiser update (SGD with the two parameter groups of
``EmotionTask``). Both models are timed in one process, alternating step by step so machine
load hits both alike; the ratio of median step times is the figure of merit (target ≤ 1.15 for
ResNet-50, 224 px, batch 8: the heads must be cheap beside the backbone, docs/mdan.md). Peak
memory is measured in a fresh subprocess per model (peak resident set size).

    python benchmarks/mdan_step.py                                   # ResNet-50, 224 px, batch 8, CPU
    python benchmarks/mdan_step.py --taxonomy webemo                 # three levels (layer2-4)
    python benchmarks/mdan_step.py --device cuda --backbone resnet101 --size 448 --batch 32  # bf16, channels_last
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from affectlab.modules.classifier import EmotionClassifier  # noqa: E402
from affectlab.modules.mdan import MDAN  # noqa: E402


def build(kind: str, args: argparse.Namespace) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    cls = MDAN if kind == "mdan" else EmotionClassifier
    model = cls(args.taxonomy, backbone=args.backbone, pretrained=False).to(args.device)
    if args.device == "cuda":
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = model.configure_optimizers()["optimizer"]
    return model, optimizer


def make_step(model, optimizer, args):
    images = torch.randn(args.batch, 3, args.size, args.size, device=args.device)
    if args.device == "cuda":
        images = images.to(memory_format=torch.channels_last)
    labels = model.taxonomy.labels_at_levels(torch.randint(0, model.taxonomy.num_classes[-1], (args.batch,),
                                                           device=args.device))

    def step() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.device == "cuda"):
            loss = model.loss(model.compute(images), labels)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if args.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, time.process_time() - cpu

    return step


def peak_memory(kind: str, args: argparse.Namespace) -> dict[str, float]:
    """Peak memory of a few steps of ``kind`` in its own process (MiB)."""
    command = [sys.executable, __file__, "--memory-of", kind, "--backbone", args.backbone, "--size", str(args.size),
               "--batch", str(args.batch), "--taxonomy", args.taxonomy, "--device", args.device,
               "--threads", str(args.threads)]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1])


def high_water_rss() -> float:
    """Peak resident set size of this process in MiB (VmHWM; ru_maxrss can carry the parent's peak across fork)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure_memory(kind: str, args: argparse.Namespace) -> None:
    before = high_water_rss()
    model, optimizer = build(kind, args)
    step = make_step(model, optimizer, args)
    for _ in range(2):
        step()
    peak = high_water_rss()
    result = {"peak_rss": peak, "step_rss": peak - before}
    if args.device == "cuda":
        result["cuda_peak"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--taxonomy", default="mikels", help="mikels (FI, 2 levels), webemo (3), sentiment (1)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--memory-of", choices=["mdan", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_of:
        measure_memory(args.memory_of, args)
        return

    steps = {kind: make_step(*build(kind, args), args) for kind in ("baseline", "mdan")}
    times: dict[str, list[tuple[float, float]]] = {"baseline": [], "mdan": []}
    for i in range(args.warmup + args.steps):
        for kind, step in steps.items():  # alternate, so load changes hit both models alike
            elapsed = step()
            if i >= args.warmup:
                times[kind].append(elapsed)
    # Wall-clock and process CPU time per step; on a shared machine the CPU time is the steadier figure.
    median = {kind: statistics.median(w for w, _ in t) for kind, t in times.items()}
    cpu = {kind: statistics.median(c for _, c in t) for kind, t in times.items()}
    memory = {kind: peak_memory(kind, args) for kind in ("baseline", "mdan")}
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"

    print(f"\n{args.backbone}, {args.size} px, batch {args.batch}, taxonomy {args.taxonomy}, {device}, "
          f"median of {args.steps} steps\n")
    print("| model | step, wall (s) | step, CPU time (s) | images/s | peak RSS (MiB) | step RSS (MiB) |" +
          (" CUDA peak (MiB) |" if args.device == "cuda" else ""))
    print("| --- | --- | --- | --- | --- | --- |" + (" --- |" if args.device == "cuda" else ""))
    for kind in ("baseline", "mdan"):
        m = memory[kind]
        row = f"| {kind} | {median[kind]:.3f} | {cpu[kind]:.3f} | {args.batch / median[kind]:.1f} | {m['peak_rss']:.0f} | {m['step_rss']:.0f} |"
        if args.device == "cuda":
            row += f" {m['cuda_peak']:.0f} |"
        print(row)
    ratio_mem = memory["mdan"]["step_rss"] / memory["baseline"]["step_rss"]
    row = (f"| **MDAN / baseline** | **{median['mdan'] / median['baseline']:.3f}** | "
           f"**{cpu['mdan'] / cpu['baseline']:.3f}** | | "
           f"{memory['mdan']['peak_rss'] / memory['baseline']['peak_rss']:.3f} | {ratio_mem:.3f} |")
    if args.device == "cuda":
        row += f" {memory['mdan']['cuda_peak'] / memory['baseline']['cuda_peak']:.3f} |"
    print(row)


if __name__ == "__main__":
    main()
