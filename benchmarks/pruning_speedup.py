"""Inference latency of a ResNet-50 thinned by gradual global pruning, against the unpruned one.

docs/pruning.md removes neurons, so the network really gets faster; Lightning's ``ModelPruning``
zeroes weights at the same sparsity and, for contrast, does not. All networks run in one process
with random weights (latency does not depend on the values), so the ratios are measured under the
same load. Prints a markdown table; the target is a latency ratio ≤ 0.6 at ≈ half the FLOPs.
``--device cuda`` times the same networks on a GPU (each pass synchronised; ``--bf16`` under
autocast) and names the card.

    python benchmarks/pruning_speedup.py --size 224 --repeats 5 --threads 1
    python benchmarks/pruning_speedup.py --device cuda --batches 1 64 --repeats 20 --bf16
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from lightning.pytorch.callbacks import ModelPruning  # noqa: E402
from torchvision.models import resnet50  # noqa: E402

from affectlab.callbacks.pruning import thin  # noqa: E402
from affectlab.callbacks.pruning_graph import count_flops, count_params  # noqa: E402


@torch.inference_mode()
def latencies(nets: dict[str, torch.nn.Module], batch: int, size: int, repeats: int,
              device: torch.device = torch.device("cpu"), bf16: bool = False) -> dict[str, float]:
    """Median seconds of one forward pass on ``batch×3×size×size`` per network.

    The networks take turns within every repeat (after one warm-up pass each), so a change of load
    on a shared machine hits them all alike and the ratios stay fair.
    """
    x = torch.randn(batch, 3, size, size, device=device)
    cuda = device.type == "cuda"
    times: dict[str, list[float]] = {name: [] for name in nets}
    for repeat in range(repeats + 1):
        for name, net in nets.items():
            if cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                net(x)
            if cuda:
                torch.cuda.synchronize(device)
            if repeat:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--target", type=float, default=0.5, help="FLOPs ratio to thin to")
    parser.add_argument("--step-ratio", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--bf16", action="store_true", help="time under bfloat16 autocast")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dense = resnet50(weights=None).eval()
    thinned = copy.deepcopy(dense)
    start = time.time()
    steps = thin(thinned, torch.zeros(1, 3, 64, 64), args.target, step_ratio=args.step_ratio)  # ratios: size-free
    thinning_s = time.time() - start
    thinned.eval()
    example = torch.zeros(1, 3, args.size, args.size, device=device)
    sparsity = 1 - count_params(thinned) / count_params(dense)
    masked, permanent = copy.deepcopy(dense), copy.deepcopy(dense)
    for net in (masked, permanent):  # global L1 magnitude pruning of every conv/linear weight
        pruning = ModelPruning("l1_unstructured", amount=sparsity, use_global_unstructured=True, verbose=0)
        pruning.setup(None, net, "fit")  # type: ignore[arg-type]
        pruning.apply_pruning(sparsity)
    pruning.make_pruning_permanent(permanent)
    nets = {"unpruned ResNet-50": dense, "thinned (GradualGlobalPruning surgery)": thinned,
            f"ModelPruning l1_unstructured {sparsity:.0%}, masks": masked.eval(),
            f"ModelPruning l1_unstructured {sparsity:.0%}, made permanent": permanent.eval()}
    for net in nets.values():
        net.to(device)
    base_flops = count_flops(dense, example)
    by_batch = {b: latencies(nets, b, args.size, args.repeats, device, args.bf16) for b in args.batches}
    times = {name: {b: by_batch[b][name] for b in args.batches} for name in nets}
    base = times["unpruned ResNet-50"]
    where = (f"{torch.cuda.get_device_name(device)}{', bf16 autocast' if args.bf16 else ''}" if device.type == "cuda"
             else f"CPU, torch threads {torch.get_num_threads()}")
    print(f"\n{len(steps)} global L1 steps of {args.step_ratio:.0%} ({thinning_s:.0f} s); input {args.size}px; "
          f"{where}; median of {args.repeats}\n")
    header = " | ".join(f"batch {b} ms | ratio" for b in args.batches)
    print(f"| network | params | GFLOPs | {header} |")
    print("|" + " --- |" * (3 + 2 * len(args.batches)))
    for name, net in nets.items():
        cells = " | ".join(f"{times[name][b] * 1e3:.0f} | {times[name][b] / base[b]:.2f}" for b in args.batches)
        nonzero = sum(int((p != 0).sum()) for p in net.parameters())
        flops = count_flops(net, example)
        print(f"| {name} | {count_params(net) / 1e6:.1f} M ({nonzero / 1e6:.1f} M non-zero) | "
              f"{flops / 1e9:.2f} ({flops / base_flops:.2f}) | {cells} |")


if __name__ == "__main__":
    main()
