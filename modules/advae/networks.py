"""The networks of AD-VAE (docs/advae.md): plain ``nn.Module``s the LightningModules train.

- ``ConvEncoder``: ``B×C×S×S`` image → diagonal Gaussian posteriors over z_content and z_style
  (the photo encoder q(z|x) of stage 1; with ``style_dim=0`` and one channel, the drawing encoder
  r(z_content|d) of stage 2).
- ``AttributeDecoder``: p(x|z, a), attributes concatenated to the input and, as constant maps, to
  every upsampling block (Fader networks do the same), so the decoder cannot forget them.
- ``AttributeAdversary``: predicts the attributes from z; the encoder learns to fool it.
- ``AttributeClassifier``: a small CNN on photos that scores generated images (attribute control).

Every image network halves (or doubles) the side per block between ``S`` and 4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from affectlab.experiments.errors import InvalidValue


def _blocks(image_size: int) -> int:
    n = int(math.log2(image_size // 4))
    if 4 * 2**n != image_size:
        raise InvalidValue(f"image_size must be 4·2^n (32, 64, 128, ...), got {image_size}")
    return n


@dataclass
class Gaussian:
    """A diagonal Gaussian ``N(mu, exp(logvar))`` over ``B×D`` latents."""

    mu: torch.Tensor
    logvar: torch.Tensor

    def sample(self) -> torch.Tensor:
        """Reparameterised sample (differentiable in mu and logvar)."""
        return self.mu + torch.randn_like(self.mu) * (0.5 * self.logvar).exp()

    def kl_to_prior(self) -> torch.Tensor:
        """KL(q ‖ N(0, I)) summed over dimensions → ``B``."""
        return 0.5 * (self.mu.pow(2) + self.logvar.exp() - 1 - self.logvar).sum(-1)

    def kl_to(self, other: Gaussian) -> torch.Tensor:
        """KL(self ‖ other) summed over dimensions → ``B``."""
        var_ratio = (self.logvar - other.logvar).exp()
        return 0.5 * (var_ratio + (self.mu - other.mu).pow(2) / other.logvar.exp() - 1
                      - (self.logvar - other.logvar)).sum(-1)


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True))


class ConvEncoder(nn.Module):
    """``B×C×S×S`` → posteriors over z_content (``B×Dc``) and z_style (``B×Ds``); a head of size 0 is absent.

    Args:
        in_channels: 3 for photos, 1 for line drawings.
        image_size: S (a power of two from 32 up).
        width: channels of the first block (doubled per block, at most 8× width).
        content_dim: dimensions of z_content (the face: what the drawing shows).
        style_dim: dimensions of z_style (background and illumination).
    """

    def __init__(self, in_channels: int = 3, image_size: int = 64, width: int = 32, content_dim: int = 32,
                 style_dim: int = 16) -> None:
        super().__init__()
        channels = [in_channels] + [width * min(2**i, 8) for i in range(_blocks(image_size))]
        self.features = nn.Sequential(*[_down(a, b) for a, b in zip(channels[:-1], channels[1:], strict=True)], nn.Flatten())
        flat = channels[-1] * 16
        self.content_dim, self.style_dim = content_dim, style_dim
        self.content = nn.Linear(flat, 2 * content_dim) if content_dim else None
        self.style = nn.Linear(flat, 2 * style_dim) if style_dim else None

    def forward(self, x: torch.Tensor) -> tuple[Gaussian | None, Gaussian | None]:
        h = self.features(x)  # B×(C·4·4)
        heads = []
        for head in (self.content, self.style):
            if head is None:
                heads.append(None)
                continue
            mu, logvar = head(h).chunk(2, dim=-1)
            heads.append(Gaussian(mu, logvar.clamp(-10, 10)))
        return heads[0], heads[1]


class _UpBlock(nn.Module):
    """Upsample ×2 after concatenating the attributes as constant maps (Fader-style conditioning)."""

    def __init__(self, cin: int, cout: int, n_attributes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ConvTranspose2d(cin + n_attributes, cout, 4, 2, 1), nn.BatchNorm2d(cout),
                                  nn.ReLU(inplace=True))

    def forward(self, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        maps = a[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        return self.body(torch.cat([h, maps], 1))


class AttributeDecoder(nn.Module):
    """p(x | z, a): ``B×D`` latent and ``B×K`` attributes in {0, 1} → ``B×C×S×S`` logits.

    Attributes enter as ``2a − 1`` (±1) so "off" is a signal, not an absence.
    """

    def __init__(self, latent_dim: int, n_attributes: int, image_size: int = 64, width: int = 32,
                 out_channels: int = 3) -> None:
        super().__init__()
        n = _blocks(image_size)
        channels = [width * min(2 ** (n - 1 - i), 8) for i in range(n)]  # deepest first
        self.start = nn.Sequential(nn.Linear(latent_dim + n_attributes, channels[0] * 16), nn.ReLU(inplace=True))
        self.c0 = channels[0]
        self.ups = nn.ModuleList(_UpBlock(a, b, n_attributes) for a, b in zip(channels, channels[1:] + [width], strict=True))
        self.head = nn.Conv2d(width, out_channels, 3, 1, 1)

    def forward(self, z: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        a = 2 * attributes - 1
        h = self.start(torch.cat([z, a], 1)).view(len(z), self.c0, 4, 4)
        for up in self.ups:
            h = up(h, a)
        return self.head(h)  # logits; sigmoid gives the image in [0, 1]


class AttributeAdversary(nn.Module):
    """Latent discriminator: ``B×D`` z → ``B×K`` attribute logits (docs/advae.md, Fader-style).

    z is standardised per dimension over the batch first (a batch norm without affine terms), so
    the encoder cannot hide the attributes from it by shrinking z's scale; a probe standardises too.
    """

    def __init__(self, latent_dim: int, n_attributes: int, hidden: int = 128, dropout: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.BatchNorm1d(latent_dim, affine=False), nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, n_attributes))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class AttributeClassifier(nn.Module):
    """A small CNN scoring photos: ``B×3×S×S`` in [0, 1] → ``B×K`` attribute logits.

    Trained on real photos only; used to measure how well generated images obey the requested
    attributes (docs/advae.md, outputs).
    """

    def __init__(self, n_attributes: int, image_size: int = 64, width: int = 16) -> None:
        super().__init__()
        channels = [3] + [width * min(2**i, 8) for i in range(_blocks(image_size))]
        self.features = nn.Sequential(*[_down(a, b) for a, b in zip(channels[:-1], channels[1:], strict=True)])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels[-1], n_attributes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
