"""Learning-rate monitor that steps aside when a run has no logger (``--trainer.logger false``)."""

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor


class LRMonitor(LearningRateMonitor):
    """Lightning's ``LearningRateMonitor``, silent instead of failing when nothing logs."""

    def on_train_start(self, trainer: L.Trainer, *args, **kwargs) -> None:
        self._active = bool(trainer.loggers)
        if self._active:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer: L.Trainer, *args, **kwargs) -> None:
        if getattr(self, "_active", False):
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer: L.Trainer, *args, **kwargs) -> None:
        if getattr(self, "_active", False):
            super().on_train_epoch_start(trainer, *args, **kwargs)
