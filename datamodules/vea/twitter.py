"""Twitter I (You et al., AAAI 2015) and Twitter II (Borth et al., SentiBank): binary sentiment.

Twitter I: 1,269 images in ``Agg_AMT_Candidates/`` and ``amt_result.csv`` with, per image, the
counts of positive and negative votes of five AMT workers. ``agree`` picks the customary subset:
images on which all five (≈882), at least four (≈1,116) or at least three (all 1,269) agree.
Twitter II: 603 images in ``{positive,negative}/``, or already split into
``{train,test}/{positive,negative}/``. Both use 5-fold cross-validation when not pre-split
(``fold`` 0–4 is the test fold; validation is carved from the other four), stratified and seeded.
"""

from __future__ import annotations

from typing import Any

from affectlab.datamodules.hierarchy import SENTIMENT
from affectlab.datamodules.vea.base import VEADataModule
from affectlab.datamodules.vea.layouts import ClassFolders, SplitFiles, SplitFolders, VoteTable
from affectlab.experiments.errors import InvalidValue

N_FOLDS = 5


class TwitterI(VEADataModule):
    """Twitter I: sentiment from five AMT votes, 5-fold cross-validation on an agreement subset.

    Args:
        agree: 5, 4 or 3 — the least number of the five workers who agree on an image's sentiment.
        fold: the test fold, 0..4.
        columns: the names of ``amt_result.csv``'s columns in order (``image``, ``positive``,
            ``negative``, others ignored), required when the file has no header row: public sources
            do not settle whether its third column counts positive or negative votes.
        **kwargs: see ``VEADataModule``.
    """

    benchmark = "TwitterI"
    taxonomy_name = "sentiment"
    index_order = SENTIMENT  # 0 negative, 1 positive: Twitter I's agreement lists and public code (docs/datasets.md)
    layouts = (
        VoteTable(csv_file="amt_result.csv", image_dir="Agg_AMT_Candidates", folds=N_FOLDS,
                  description="the Twitter I release: Agg_AMT_Candidates/<file>.jpg and amt_result.csv "
                              "(image, positive and negative vote counts)"),
        SplitFiles(),
    )

    def __init__(self, root: str = "data/TwitterI", agree: int = 5, fold: int = 0, columns: list[str] | None = None,
                 **kwargs: Any) -> None:
        if agree not in (3, 4, 5):
            raise InvalidValue(f"agree must be 5, 4 or 3 (workers out of five), got {agree}")
        if not 0 <= fold < N_FOLDS:
            raise InvalidValue(f"fold must be in 0..{N_FOLDS - 1}, got {fold}")
        super().__init__(root=root, **kwargs)
        self.agree = agree
        self.fold = fold
        self.columns = list(columns) if columns else None

    def protocol(self) -> dict[str, Any]:
        return {"agree": self.agree, "fold": self.fold, **({"columns": self.columns} if self.columns else {})}


class TwitterII(VEADataModule):
    """Twitter II: ``{positive,negative}/`` with 5-fold cross-validation, or pre-split folders.

    Args:
        fold: the test fold, 0..4 (ignored when the release is already split).
        **kwargs: see ``VEADataModule``.
    """

    benchmark = "TwitterII"
    taxonomy_name = "sentiment"
    index_order = SENTIMENT  # 0 negative, 1 positive: Twitter I's agreement lists and public code (docs/datasets.md)
    layouts = (
        SplitFolders(description="pre-split folders {train,test}/{positive,negative}/<file>.jpg"),
        ClassFolders(subdir="", folds=N_FOLDS,
                     description="the Twitter II release: {positive,negative}/<file>.jpg (5-fold cross-validation)"),
        SplitFiles(),
    )

    def __init__(self, root: str = "data/TwitterII", fold: int = 0, **kwargs: Any) -> None:
        if not 0 <= fold < N_FOLDS:
            raise InvalidValue(f"fold must be in 0..{N_FOLDS - 1}, got {fold}")
        super().__init__(root=root, **kwargs)
        self.fold = fold

    def protocol(self) -> dict[str, Any]:
        return {"fold": self.fold}
