"""affectlab: four vision papers as one PyTorch Lightning experiment framework.

The repository's top-level folders install as subpackages of this one, so nothing generic lands
on the import path:

- ``affectlab.experiments``: the command line (``affectlab fit|validate|test|predict|sweep``) and
  the YAML configs;
- ``affectlab.modules``: LightningModules and their networks (MDAN, the flat baseline, AD-VAE,
  feature map inversion);
- ``affectlab.datamodules``: every benchmark and data set as it sits on disk;
- ``affectlab.callbacks``: gradual global pruning, media and metric logging.

See ``docs/`` for one page per method, the datasets and the design.
"""

__version__ = "0.2.0"
