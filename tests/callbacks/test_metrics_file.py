"""MetricsFile: the run's metrics as JSON after every validation, and a stop file that ends the fit."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from affectlab.callbacks.metrics_file import MetricsFile


class LoggingModel(BoringModel):
    """BoringModel that logs a stage/name metric per validation epoch, as the real modules do."""

    def validation_step(self, batch, batch_idx):
        loss = self.step(batch)
        self.log("val/loss", loss)
        self.log("val/acc", torch.tensor(0.25 * (self.current_epoch + 1)))
        return loss


def fit(tmp_path, max_epochs: int, ckpt_path: str | None = None) -> dict:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=max_epochs, limit_train_batches=2,
                         limit_val_batches=2, callbacks=[MetricsFile(), checkpoint], logger=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(LoggingModel(), ckpt_path=ckpt_path)
    return json.loads((tmp_path / "metrics.json").read_text())


def test_history_has_one_entry_per_validation_epoch_and_final_values(tmp_path):
    metrics = fit(tmp_path, max_epochs=3)
    assert [entry["epoch"] for entry in metrics["history"]] == [0, 1, 2]  # the sanity check is no epoch
    assert [entry["val/acc"] for entry in metrics["history"]] == [0.25, 0.5, 0.75]
    assert metrics["final"]["val/acc"] == 0.75 and "val/loss" in metrics["final"]


def test_a_stop_file_ends_the_fit_after_the_current_epoch(tmp_path):
    (tmp_path / "STOP").touch()
    metrics = fit(tmp_path, max_epochs=5)
    assert len(metrics["history"]) == 1


def test_a_resumed_fit_keeps_the_history_of_the_epochs_before(tmp_path):
    fit(tmp_path, max_epochs=2)
    metrics = fit(tmp_path, max_epochs=3, ckpt_path=str(tmp_path / "checkpoints" / "last.ckpt"))
    assert [entry["epoch"] for entry in metrics["history"]] == [0, 1, 2]
