"""AD-VAE: attribute-controlled face photo synthesis from simple line drawings (docs/advae.md).

``networks.py`` holds the encoder q(z|x) with z = (z_content, z_style), the attribute-conditioned
decoder p(x|z, a), the latent attribute adversary, the drawing encoder and the photo attribute
classifier that scores attribute control; ``module.py`` trains them in two stages
(``ADVAEStage1`` on photos, ``ADVAEStage2`` from XDoG line drawings) and synthesises photos from
drawings with chosen attributes and a sampled or transferred style; ``media.py`` builds the sweeps,
the control accuracy and the W&B grids. Data: ``datamodules/celeba.py`` and ``datamodules/sketch.py``.
"""

from affectlab.modules.advae.module import ADVAEStage1, ADVAEStage2

__all__ = ["ADVAEStage1", "ADVAEStage2"]
