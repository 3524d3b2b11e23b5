"""Feature map inversion speed: batched versus one filter at a time, truncated versus full VGG-19.

Measures in one run (docs/inversion.md, issue targets in brackets):
1. filters per second when ``--filters`` filters of ``--layer`` are inverted together in one batch
   versus one at a time, with the same iterations (target: batched ≥ 4× more filters/s); the
   batch both in one pass through the trunk and ``--chunk`` images at a time (``chunk_size``);
2. time per iteration of one inversion with the network truncated at the deepest target layer
   versus running the full VGG-19 trunk (target: truncation ≥ 1.5× faster for relu3_2).
Random VGG-19 weights: speed does not depend on them. An inversion's time is its first step (which
also computes the targets from the content image — a one-at-a-time inversion pays that forward
every time) plus ``iterations − 1`` median steps, medians because the machine may be shared.
Prints a markdown table.

    python benchmarks/inversion.py                      # 16 filters of relu3_2 at 224 px, 3 iterations
    python benchmarks/inversion.py --iterations 10 --device cuda
    python benchmarks/inversion.py --trunk-batches 1,2,4,8,16   # the trunk alone: seconds per image by batch size
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from affectlab.modules.inversion import FeatureMapInversion  # noqa: E402
from affectlab.modules.inversion.trunk import FeatureTrunk  # noqa: E402


def build(layer: str, filters: list[int], size: int, truncate: bool, device: str,
          chunk: int | None = None) -> FeatureMapInversion:
    module = FeatureMapInversion(network="vgg19", pretrained=False, image_size=size, layers=[layer], filters=filters,
                                 include_original=False, stop_eps=0.0, truncate=truncate, denoise_weight=0.0,
                                 chunk_size=chunk)
    return module.to(device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def invert(module: FeatureMapInversion, content: torch.Tensor, iterations: int, device: str) -> list[float]:
    """The inversion loop of ``InversionModule.training_step`` (targets, SGD, clipping, schedule): seconds per step.

    The first entry also holds computing the targets from the content image.
    """
    optimizer = torch.optim.SGD([module.image], lr=0.1, momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, 10, 0.9)
    times = []
    sync(device)
    start = time.perf_counter()
    module.prepare({"content": content})
    for _ in range(iterations):
        optimizer.zero_grad()
        module.accumulate_gradients()
        nn.utils.clip_grad_value_([module.image], 10.0)
        optimizer.step()
        schedule.step()
        sync(device)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
    return times


def trunk_per_image(layers: list[str], size: int, batches: list[int], device: str, steps: int = 3) -> None:
    """Seconds per image of one forward-and-backward of the trunk alone, for each batch size (median of ``steps``)."""
    trunk = FeatureTrunk("vgg19", pretrained=False).to(device)
    print(f"\nVGG-19 trunk to {','.join(layers)}, {size} px, {device}: seconds per image per step\n")
    print("| batch | s/image |")
    print("| --- | --- |")
    for batch in batches:
        x = torch.randn(batch, 3, size, size, device=device, requires_grad=True)
        times = []
        for _ in range(steps + 1):                  # the first is a warm-up
            sync(device)
            start = time.perf_counter()
            sum(f.pow(2).sum() for f in trunk(x, layers).values()).backward()
            sync(device)
            times.append(time.perf_counter() - start)
        print(f"| {batch} | {statistics.median(times[1:]) / batch:.4f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="relu3_2")
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--chunk", type=int, default=2,
                        help="also time the batch passed through the trunk in chunks of this many images (0: skip)")
    parser.add_argument("--trunk-batches", help="only time the trunk alone per image at these batch sizes "
                        "(comma-separated), up to the comma-separated layers of --layer")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.trunk_batches:
        trunk_per_image(args.layer.split(","), args.size, [int(b) for b in args.trunk_batches.split(",")], args.device)
        return
    content = torch.rand(1, 3, args.size, args.size, device=args.device)
    filters = list(range(args.filters))

    # warm-up: kernels and allocator for both batch shapes, outside the timings
    invert(build(args.layer, filters[:2], args.size, True, args.device), content, 1, args.device)
    invert(build(args.layer, filters[:1], args.size, False, args.device), content, 1, args.device)

    # The machine may be shared: per-step medians over two runs of each batched variant.
    def run(filters_: list[int], truncate: bool = True, chunk: int | None = None) -> tuple[float, list[float]]:
        times = invert(build(args.layer, filters_, args.size, truncate, args.device, chunk), content,
                       args.iterations + 1, args.device)
        return times[0], times[1:]          # the first step also computes the targets

    def batched_run(chunk: int | None) -> tuple[list[float], list[float]]:
        firsts, steps = [], []
        for _ in range(2):
            first, more = run(filters, chunk=chunk)
            firsts.append(first)
            steps += more
        print(f"batched (chunks of {chunk or args.filters}): {statistics.median(steps):.2f} s/step", file=sys.stderr,
              flush=True)
        return firsts, steps

    def seconds(firsts: list[float], steps: list[float]) -> float:
        """One inversion of `iterations` steps: the first step (with targets) + the median step."""
        return statistics.median(firsts) + (args.iterations - 1) * statistics.median(steps)

    batched_first, batched_steps = batched_run(None)
    chunked = batched_run(args.chunk) if 0 < args.chunk < args.filters else None
    single_first, single_steps = [], []
    for k in filters:
        first, steps = run([k])
        single_first.append(first)
        single_steps += steps
    batched = seconds(batched_first, batched_steps)
    singles = args.filters * seconds(single_first, single_steps)
    per_step = {truncate: statistics.median(run([0], truncate)[1]) for truncate in (True, False)}

    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"\nFeature map inversion, VGG-19 (random weights), {args.layer}, {args.size} px, "
          f"{args.iterations} iterations, {name}\n")
    print("| measure | value | target |")
    print("| --- | --- | --- |")
    print(f"| {args.filters} filters together: filters/s | {args.filters / batched:.3f} ({batched:.1f} s) | |")
    print(f"| one filter at a time: filters/s | {args.filters / singles:.3f} ({singles:.1f} s) | |")
    print(f"| batched speed-up | {singles / batched:.2f}× | ≥ 4× |")
    if chunked is not None:
        in_chunks = seconds(*chunked)
        print(f"| {args.filters} filters together, through the trunk {args.chunk} at a time: filters/s | "
              f"{args.filters / in_chunks:.3f} ({in_chunks:.1f} s) | |")
        print(f"| batched speed-up, chunks of {args.chunk} | {singles / in_chunks:.2f}× | ≥ 4× |")
    step_ratio = args.filters * statistics.median(single_steps) / statistics.median(batched_steps)
    print(f"| batched speed-up per step, without the targets' forward | {step_ratio:.2f}× | |")
    print(f"| s/iteration, truncated at {args.layer} | {per_step[True]:.3f} | |")
    print(f"| s/iteration, full VGG-19 | {per_step[False]:.3f} | |")
    print(f"| truncation speed-up | {per_step[False] / per_step[True]:.2f}× | ≥ 1.5× |")


if __name__ == "__main__":
    main()
