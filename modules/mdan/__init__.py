"""MDAN — Multi-level Dependent Attention Network (Xu et al., CVPR 2022), docs/mdan.md.

``attention.py`` holds MCCA and LDCAM, ``network.py`` the Affective Semantic Mapping, local
classifiers, global head and the network, ``module.py`` the LightningModule ``MDAN``.
"""

from affectlab.modules.mdan.attention import LevelDependentCAM, MultiHeadCrossChannelAttention
from affectlab.modules.mdan.module import MDAN
from affectlab.modules.mdan.network import (
           AffectiveSemanticMapping,
           LocalClassifier,
           MDANNetwork,
           mask_by_hierarchy,
)

__all__ = ["MDAN", "AffectiveSemanticMapping", "LevelDependentCAM", "LocalClassifier", "MDANNetwork",
           "MultiHeadCrossChannelAttention", "mask_by_hierarchy"]
