"""LightningModules and the networks they train: backbones, the flat baseline, MDAN, AD-VAE, inversion."""
