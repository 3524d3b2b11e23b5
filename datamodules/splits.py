"""The four loader hooks every affectlab DataModule shares, in terms of one ``_loader`` method."""

from __future__ import annotations

from torch.utils.data import DataLoader


class SplitLoaders:
    """Mixin: train/val/test/predict loaders from ``self._loader(split, train)``; predict reads test."""

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")
