"""MDAN — Multi-level Dependent Attention Network (Xu et al., CVPR 2022), PAPERS.md §1.

``attention.py`` holds MCCA and LDCAM, ``network.py`` the Affective Semantic Mapping, local
classifiers, global head and the network, ``module.py`` the LightningModule ``MDAN``.
"""

from modules.mdan.attention import LevelDependentCAM, MultiHeadCrossChannelAttention
from modules.mdan.module import MDAN
from modules.mdan.network import AffectiveSemanticMapping, LocalClassifier, MDANNetwork, mask_by_hierarchy

__all__ = ["MDAN", "AffectiveSemanticMapping", "LevelDependentCAM", "LocalClassifier", "MDANNetwork",
           "MultiHeadCrossChannelAttention", "mask_by_hierarchy"]
