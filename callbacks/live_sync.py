"""Live W&B sync from compute nodes without internet, through wandb-osh (README, "Scaling out").

An offline run is synced by the ``wandb-osh`` watcher running where there is internet (the login
node): after every validation this callback writes the run's W&B folder into the communication
folder the watcher polls, and the watcher runs ``wandb sync`` on it. The communication folder
must be on a file system both see.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import lightning.pytorch as pl
from wandb_osh.hooks import _comm_default_dir
from wandb_osh.lightning_hooks import TriggerWandbSyncLightningCallback


class LiveWandbSync(TriggerWandbSyncLightningCallback):
    """wandb-osh's Lightning callback, quiet where there is no W&B run to sync.

    The process that logs (global rank 0, with a W&B logger) asks for a sync after each validation
    and once more when fit ends; other ranks, runs without a W&B logger (``debug_fast.yaml``) and
    online runs do nothing.

    Args:
        communication_dir: the folder the ``wandb-osh`` watcher polls (its ``--command-dir``);
            default ``~/.wandb_osh_command_dir``, the watcher's default.
    """

    def __init__(self, communication_dir: str | PathLike = _comm_default_dir) -> None:
        super().__init__(communication_dir=Path(communication_dir).expanduser())

    @staticmethod
    def _offline_run() -> bool:
        import wandb

        return wandb.run is not None and bool(wandb.run.settings._offline)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self._offline_run():
            super().on_validation_epoch_end(trainer, pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self._offline_run():
            self._hook()
