"""The launch layer: the LightningCLI (``cli.py``), the local sweep agent and the YAML configs.

No model or data code lives here; configs under ``defaults/`` are presets composed with ``-c``.
"""
