"""MDAN's two attention modules (docs/mdan.md): MCCA over channels, LDCAM over space.

``MultiHeadCrossChannelAttention`` treats the channels of a stage as tokens (each token is a
channel's flattened ``H×W`` map) and lets them attend, per head, to the channels of the previous
mapped stage; ``LevelDependentCAM`` turns a level's local class maps into one spatial attention
map that gates the next, finer level. Both are residual with a learnable scale initialised to 0,
so the network computes exactly its backbone's features until training opens them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from affectlab.experiments.errors import InvalidValue


class MultiHeadCrossChannelAttention(nn.Module):
    """Channel attention across semantic levels, applied residually (docs/mdan.md, MCCA).

    Queries come from the current stage, keys and values from the previous mapped stage, pooled
    to the current resolution and projected to the current width (self-attention when there is
    no previous stage). Channels are split into ``heads`` groups; in each head a scaled
    dot-product attention runs over the ``C/h`` channel tokens, whose features are the ``H·W``
    positions. The output is added back with a learnable scale initialised to 0, so a pretrained
    backbone starts out unchanged.

    As in DANet's channel attention (whose zero-initialised residual scale this follows), the
    queries are the current channels themselves and the attended channels are added back without
    an output projection; only keys and values are projected, by one grouped 1×1 convolution
    (one group per head) from the previous stage's width to twice the current one. Dense ``C×C``
    projections at ResNet's last stage would cost as much as a backbone block, and MDAN's heads
    must stay cheap beside the backbone (benchmarks/RESULTS.md, "MDAN step").

    Args:
        channels: ``C`` of the current stage.
        source_channels: ``C'`` of the previous mapped stage (``None``: self-attention).
        heads: number of heads ``h``; must divide ``channels`` (and ``source_channels``).
    """

    def __init__(self, channels: int, source_channels: int | None = None, heads: int = 8) -> None:
        super().__init__()
        source_channels = source_channels or channels
        if channels % heads or source_channels % heads:
            raise InvalidValue(f"heads={heads} must divide the channel counts {channels} and {source_channels}")
        self.heads = heads
        self.key_value = nn.Conv2d(source_channels, 2 * channels, 1, groups=heads, bias=False)
        self.scale = nn.Parameter(torch.zeros(1))  # residual scale, 0 at start (docs/mdan.md)

    def attend(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        """The attention term alone, ``B×C×H×W`` (before the residual scale)."""
        b, c, h, w = x.shape
        source = x if source is None else source
        if source.shape[-2:] != (h, w):  # previous stage is finer: pool it to the current grid
            source = F.adaptive_avg_pool2d(source, (h, w))
        # The grouped projection keeps head i's outputs in group i, so the chunks below line up per head.
        kv = self.key_value(source).view(b, self.heads, 2, c // self.heads, h * w)
        q = x.reshape(b, self.heads, c // self.heads, h * w)                  # B×h×(C/h)×HW: channel tokens
        k, v = kv[:, :, 0], kv[:, :, 1]                                       # B×h×(C/h)×HW each
        attended = F.scaled_dot_product_attention(q, k, v)                     # softmax(qkᵀ/√HW)·v
        return attended.reshape(b, c, h, w)

    def forward(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        """``x + γ·MCCA(x, source)``; ``x``: ``B×C×H×W``, ``source``: ``B×C'×H'×W'`` or ``None``."""
        return x + self.scale * self.attend(x, source)


def normalise_map(cam: torch.Tensor) -> torch.Tensor:
    """``Â = tanh(A − mean_HW A)`` per map of ``B×H×W``, in (−1, 1) (the ``norm`` of docs/mdan.md).

    Centred, so a flat map (no spatial evidence) is 0 everywhere and gates nothing; not stretched,
    so a nearly flat map stays nearly 0 instead of being spread over the full range as a per-image
    min–max would; bounded, so the gate ``1 + γ·Â`` stays within ``(1 − |γ|, 1 + |γ|)``. The map
    keeps the units of the class maps (logits), which the training gives their scale.
    """
    return torch.tanh(cam - cam.mean((-2, -1), keepdim=True))


def display_map(cam: torch.Tensor) -> torch.Tensor:
    """``(Â + 1) / 2`` in [0, 1] for heat maps: a flat map shows as a uniform 0.5, never stretched."""
    return (normalise_map(cam) + 1) / 2


class LevelDependentCAM(nn.Module):
    """The probability-weighted class activation map of a level, and its gate (docs/mdan.md, LDCAM).

    ``A_l = Σ_k softmax(logits_l)_k · M_l[k]``; the next mapped stage is gated as
    ``F_{l+1} ← F_{l+1} ⊙ (1 + γ·Â_l)`` with ``Â_l = normalise_map(A_l)`` resized to its grid, so
    the coarser level's evidence tells the finer level where to look. ``γ`` is one learnable scalar
    per gated level, initialised to 0 like MCCA's residual scale, so a pretrained backbone starts
    out unchanged; the class maps come from the level's local classifier.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(1))  # γ, 0 at start (docs/mdan.md, identity at start)

    @staticmethod
    def activation_map(class_maps: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``A_l``: ``B×H×W`` (logit units) from class maps ``B×n_l×H×W`` and logits ``B×n_l``."""
        weights = logits.softmax(1)[:, :, None, None]                         # B×n_l×1×1
        return (weights * class_maps).sum(1)

    def gate(self, features: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        """``F ⊙ (1 + γ·Â)``: features ``B×C×H×W``, ``cam`` (``A``) ``B×H'×W'``, normalised then resized to ``H×W``."""
        cam = F.interpolate(normalise_map(cam)[:, None], size=features.shape[-2:], mode="bilinear",
                            align_corners=False)
        return features * (1 + self.scale * cam)

    def forward(self, features: torch.Tensor, class_maps: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return self.gate(features, self.activation_map(class_maps, logits))
