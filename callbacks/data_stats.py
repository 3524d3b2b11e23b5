"""Log the data statistics table to W&B when a fit starts, next to the run it describes.

The rows are those of ``affectlab-data stats`` (``datamodules/stats.py``): per split and leaf
class, the images, the unreadable files (only with ``decode=True``: decoding a large release
takes minutes) and the listed-but-missing files, with each class's ancestors in the taxonomy.
Without a ``WandbLogger`` (or a DataModule that has splits) the callback does nothing.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from affectlab.datamodules.stats import COLUMNS, stats_rows


class DataStatsTable(L.Callback):
    """Log ``data/stats`` as a ``wandb.Table`` at ``on_fit_start``.

    Args:
        decode: decode every file to count the unreadable ones (slow on big releases).
        key: the W&B key of the table.
    """

    def __init__(self, decode: bool = False, key: str = "data/stats") -> None:
        self.decode = decode
        self.key = key

    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        datamodule = trainer.datamodule
        if not loggers or datamodule is None or not hasattr(datamodule, "splits"):
            return
        rows = stats_rows(datamodule, decode=self.decode, progress=False)
        for logger in loggers:
            logger.log_table(key=self.key, columns=list(COLUMNS), data=rows)
