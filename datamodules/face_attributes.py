"""The 40 CelebA attribute names in the release's column order, and the ones AD-VAE controls by default.

A module of its own so that the CelebA reader and the line-drawing reader share the names without
importing each other (the synthetic faces, ``datamodules/samples/faces.py``, read them here too).
"""

from __future__ import annotations

CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
#: docs/advae.md (decision): hair colours, complexion, gender and age.
DEFAULT_ATTRIBUTES: list[str] = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Pale_Skin",
                                 "Rosy_Cheeks", "Male", "Young"]

__all__ = ["CELEBA_ATTRIBUTES", "DEFAULT_ATTRIBUTES"]
