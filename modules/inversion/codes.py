"""Code modifications and style statistics of feature map inversion (docs/inversion.md).

A code ``A`` is a feature map ``…×C×H×W`` (C channels over P = H·W positions; leading batch
dimensions are kept). Each modification returns the target ``T`` that an image is optimised to
reproduce:

- ``original``:    T = A (plain code inversion);
- ``feature_map``: T_k[p] = Σ_c A_c[p] for the filter of interest k, every other channel 0 — all of
  the code's energy is put through one filter, so the inverted image shows that filter's texture;
- ``random``:      T_c = (Σ A) · r_c · A_c / Σ_p A_c with shares r ~ N(3, 1000²) normalised to sum 1 —
  each channel keeps its spatial pattern, only its share of the total energy changes;
- ``sort_and_shift`` (the original's ``purposeful`` code modification, not described in the paper):
  rank the content's channels and the style's channels by energy Σ_p A_c; channel c of the target
  takes the spatial pattern of the content channel of the same rank as style channel c, centred,
  plus style channel c's mean — T_c = A_π(c) − mean(A_π(c)) + mean(S_c). Every channel gets the
  style's energy (Σ T = Σ S) and keeps a content channel's spatial variation;
- ``energy`` / ``gram``: the per-channel total activation (purposeful style transfer) and the Gram
  matrix (Gatys et al.), both divided by P so a style image of any size gives comparable targets.

Guards (the original's code can divide by zero and explode; the definitions are kept):
- dead channels (Σ_p A_c ≈ 0) have no spatial pattern to keep, so under ``random`` they get T_c = 0
  and the shares are renormalised over the live channels, which keeps Σ T = Σ A;
- shares whose sum is near zero (|Σ r| < ``min_share_sum`` · Σ|r|) would blow the targets up, so
  they are redrawn from the same generator (deterministic for a seed);
- a code with no energy at all (Σ A ≈ 0) gives T = 0 instead of NaN.
Negative shares (r_c < 0, about half of them for N(3, 1000²)) give targets a post-ReLU layer cannot
reach; as in the original they are kept, and the optimisation drives those channels to zero.
"""

from __future__ import annotations

import torch

#: Energies at or below this are treated as zero (dead channel, empty code).
EPS = 1e-8


def original(code: torch.Tensor) -> torch.Tensor:
    """T = A. ``…×C×H×W`` → ``…×C×H×W``."""
    return code.clone()


def feature_map(code: torch.Tensor, k: int) -> torch.Tensor:
    """All energy into filter ``k``: T_k = Σ_c A_c, other channels 0. ``…×C×H×W`` → ``…×C×H×W``."""
    channels = code.shape[-3]
    if not 0 <= k < channels:
        raise ValueError(f"filter {k} out of range for a code with {channels} channels")
    target = torch.zeros_like(code)
    target[..., k, :, :] = code.sum(dim=-3)
    return target


def random_shares(channels: int, generator: torch.Generator | None = None, mean: float = 3.0, std: float = 1000.0,
                  live: torch.Tensor | None = None, min_share_sum: float = 0.05, tries: int = 100,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Shares r ~ N(mean, std²) over the ``live`` channels, normalised to Σ r = 1; dead ones get 0.

    Redraws while |Σ r| < ``min_share_sum`` · Σ|r| (a near-zero sum would explode every share); after
    ``tries`` draws it falls back to |r|, whose sum cannot vanish. Returns ``C``.
    """
    live = torch.ones(channels, dtype=torch.bool) if live is None else live.cpu()
    shares = torch.zeros(channels, dtype=dtype)
    if not live.any():
        return shares
    for _ in range(tries):
        r = torch.randn(int(live.sum()), generator=generator, dtype=dtype) * std + mean
        if r.sum().abs() >= min_share_sum * r.abs().sum():
            break
    else:
        r = r.abs()
    shares[live] = r / r.sum()
    return shares


def random(code: torch.Tensor, generator: torch.Generator | None = None, mean: float = 3.0, std: float = 1000.0,
           min_share_sum: float = 0.05) -> torch.Tensor:
    """Random energy reallocation of one code ``C×H×W`` → ``C×H×W`` (guards in the module docstring)."""
    if code.dim() != 3:
        raise ValueError(f"random reallocation takes one code C×H×W, got {tuple(code.shape)}")
    channel_energy = code.sum(dim=(-2, -1))                       # C: Σ_p A_c
    total = channel_energy.sum()                                  # Σ A
    live = channel_energy.abs() > EPS * max(float(channel_energy.abs().max()), 1.0)
    if total.abs() <= EPS or not live.any():
        return torch.zeros_like(code)
    shares = random_shares(code.shape[0], generator, mean, std, live, min_share_sum).to(code)
    scale = torch.where(live, total * shares / torch.where(live, channel_energy, torch.ones_like(channel_energy)),
                        torch.zeros_like(shares))                 # C: (Σ A) r_c / Σ_p A_c
    return code * scale[:, None, None]


def sort_and_shift(code: torch.Tensor, style_code: torch.Tensor) -> torch.Tensor:
    """The original's ``purposeful`` code: content patterns re-ranked and shifted to the style's channel energies.

    ``code`` ``C×H×W`` and ``style_code`` ``C×H'×W'`` (the style image may have another size: only its
    channel means are used) → ``C×H×W``. The content channel with the r-th smallest energy goes to
    the channel where the style has its r-th smallest energy; each channel is then shifted so its
    mean is the style's (module docstring). Ties are ranked by channel index (stable sort).
    """
    if code.dim() != 3 or style_code.dim() != 3 or code.shape[0] != style_code.shape[0]:
        raise ValueError(f"sort_and_shift takes a content and a style code C×H×W with the same C, "
                         f"got {tuple(code.shape)} and {tuple(style_code.shape)}")
    content_mean = code.mean(dim=(-2, -1))                         # C (energy / P: the same ranking)
    style_mean = style_code.mean(dim=(-2, -1)).to(code)             # C
    content_rank = torch.argsort(content_mean, stable=True)         # channels by rising energy
    style_rank = torch.argsort(style_mean, stable=True)
    source = torch.empty_like(content_rank)
    source[style_rank] = content_rank                               # channel c takes content channel source[c]
    moved = code[source]
    return moved - moved.mean(dim=(-2, -1), keepdim=True) + style_mean[:, None, None]


def energy(code: torch.Tensor) -> torch.Tensor:
    """Per-channel total activation divided by P. ``…×C×H×W`` → ``…×C``."""
    return code.mean(dim=(-2, -1))


def purposeful(style_code: torch.Tensor) -> torch.Tensor:
    """Target of purposeful reallocation: the style code's energy vector (matched instead of its Gram matrix)."""
    return energy(style_code)


def gram(code: torch.Tensor) -> torch.Tensor:
    """Gram matrix of channel correlations divided by P. ``…×C×H×W`` → ``…×C×C``."""
    flat = code.flatten(-2)                                       # …×C×P
    return flat @ flat.transpose(-1, -2) / flat.shape[-1]


#: Statistics the inversion loss compares: the code itself, its energy vector or its Gram matrix.
STATISTICS = {"code": lambda f: f, "energy": energy, "gram": gram}
