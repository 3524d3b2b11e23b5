"""A fresh attribute probe on frozen latents: the test of disentanglement (docs/advae.md).

An adversary trained alongside the encoder only shows that *it* cannot read the attributes from z
at this moment; a classifier fitted afresh on the frozen latents of the training split, then
scored on the validation split against the majority rate, shows whether anyone can. If z is
disentangled from an attribute, the probe does no better than always guessing the validation
split's majority value (gap ≈ 0).

The probe is a small MLP on standardised z, trained full-batch with Adam and weight decay; one
probe per run reads all K attributes (one logit each).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ProbeResult:
    """Per-attribute accuracy of the probe on the validation latents and the majority rate there."""

    names: list[str]
    accuracy: torch.Tensor  # K
    majority: torch.Tensor  # K: accuracy of always answering the validation split's majority value

    @property
    def gap(self) -> torch.Tensor:
        """Probe accuracy minus the majority rate, per attribute (``K``)."""
        return self.accuracy - self.majority

    def summary(self) -> dict[str, float]:
        """Mean accuracy, majority rate and gap, then ``gap/<name>`` per attribute."""
        out = {"probe_acc": self.accuracy.mean().item(), "probe_majority": self.majority.mean().item(),
               "probe_gap": self.gap.mean().item()}
        out.update({f"probe_gap/{n}": g.item() for n, g in zip(self.names, self.gap, strict=True)})
        return out

    def rows(self) -> list[dict[str, float | str]]:
        """One row per attribute (for the run folder's CSV)."""
        return [{"attribute": n, "probe_acc": round(a.item(), 4), "majority": round(m.item(), 4),
                 "gap": round((a - m).item(), 4)}
                for n, a, m in zip(self.names, self.accuracy, self.majority, strict=True)]


def fit_probe(z_train: torch.Tensor, a_train: torch.Tensor, z_val: torch.Tensor, a_val: torch.Tensor,
              names: list[str], hidden: int = 64, steps: int = 400, lr: float = 1e-2,
              weight_decay: float = 1e-3, seed: int = 0) -> ProbeResult:
    """Fit a fresh MLP probe ``z → a`` on the training latents and score it on the validation ones.

    Args:
        z_train, a_train: ``N×D`` frozen latents (posterior means) and ``N×K`` attributes in {0, 1}.
        z_val, a_val: the validation split's, ``M×D`` and ``M×K``.
        names: the K attribute names.
        hidden: width of the probe's hidden layer (0: a linear probe).
        steps: full-batch Adam steps.
        seed: the probe's initialisation (the result must not depend on the caller's RNG state).
    """
    if len(z_train) < 2 or len(z_val) == 0:
        raise ValueError(f"fit_probe needs at least 2 training and 1 validation latents, got {len(z_train)} "
                         f"and {len(z_val)}")
    if a_train.shape[1] != len(names) or a_val.shape[1] != len(names):
        raise ValueError(f"fit_probe: {a_train.shape[1]} / {a_val.shape[1]} attribute columns for {len(names)} names")
    # Lightning validates under inference mode: leave it (and clone the latents out of it) to train.
    with torch.inference_mode(False), torch.enable_grad():
        z_train, a_train, z_val, a_val = (t.detach().float().cpu().clone() for t in (z_train, a_train, z_val, a_val))
        mean, std = z_train.mean(0), z_train.std(0).clamp_min(1e-6)
        x_train, x_val = (z_train - mean) / std, (z_val - mean) / std
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
            k, d = a_train.shape[1], z_train.shape[1]
            probe = (nn.Linear(d, k) if hidden <= 0
                     else nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, k)))
        optimiser = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(steps):
            optimiser.zero_grad()
            F.binary_cross_entropy_with_logits(probe(x_train), a_train).backward()
            optimiser.step()
        with torch.no_grad():
            accuracy = ((probe(x_val) > 0) == a_val.bool()).float().mean(0)
    rate = a_val.mean(0)
    return ProbeResult(list(names), accuracy, torch.maximum(rate, 1 - rate))
