"""A test-only callback, importable by CLI subprocesses: records which samples each rank trained on."""

import json
import os
from pathlib import Path

import lightning as L


class RecordIndices(L.Callback):
    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.indices: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.indices += [int(i) for i in batch["index"]]

    def on_train_end(self, trainer, pl_module) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        rank = trainer.global_rank
        (self.folder / f"rank{rank}.json").write_text(json.dumps({
            "rank": rank, "world_size": trainer.world_size, "indices": self.indices,
            "pid": os.getpid(),
        }))
