"""Write what ``predict`` returns to ``predictions.csv`` in the run folder.

Modules whose ``predict_step`` returns a list of dict rows (every emotion classifier: the image
path, the predicted class and the probabilities at every level of the taxonomy) get one CSV row
per image; modules that return anything else are left to write their own outputs.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter

log = logging.getLogger(__name__)


class PredictionsCSV(BasePredictionWriter):
    """Collect prediction rows on every rank and write one CSV on rank 0.

    Args:
        filename: file name inside the run folder (``trainer.default_root_dir``).
    """

    def __init__(self, filename: str = "predictions.csv") -> None:
        super().__init__(write_interval="epoch")
        self.filename = filename
        self.path: Path | None = None

    def write_on_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any,
                           batch_indices: Any) -> None:
        batches = predictions[0] if predictions and isinstance(predictions[0], list) and predictions[0] \
            and isinstance(predictions[0][0], list) else predictions
        rows = [row for batch in batches if isinstance(batch, list) for row in batch if isinstance(row, dict)]
        if trainer.world_size > 1:
            gathered = [None] * trainer.world_size
            import torch.distributed as dist

            dist.all_gather_object(gathered, rows)
            rows = [row for part in gathered for row in part]
        if not rows or trainer.global_rank != 0:
            return
        seen, unique = set(), []
        for row in rows:  # the distributed sampler pads with repeats
            if row.get("path") not in seen:
                seen.add(row.get("path"))
                unique.append(row)
        self.path = Path(trainer.default_root_dir) / self.filename
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fields = list(unique[0].keys())
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(unique)
        log.info("wrote %d predictions to %s", len(unique), self.path)
        print(f"predictions: {self.path}")
