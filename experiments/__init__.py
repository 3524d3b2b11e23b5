"""The launch layer: the LightningCLI (``cli.py``), the local sweep agent and the YAML configs.

No model or data code lives here; configs under ``defaults/`` are presets composed with ``-c``.
"""

#: What ``affectlab --help`` says affectlab is (the launcher and the LightningCLI both show it).
DESCRIPTION = (
    "affectlab: hierarchical visual emotion analysis (MDAN), gradually global neuron pruning, AD-VAE "
    "face synthesis from line drawings and feature map inversion, as one PyTorch Lightning experiment "
    "framework. An experiment is a YAML file composed from model, data and trainer parts "
    "(experiments/); every run gets its own folder under runs/.")
