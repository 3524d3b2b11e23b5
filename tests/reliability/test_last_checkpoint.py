"""``last.ckpt`` is the state at the end of the last epoch, whatever validation did.

The trial: a monitored metric that is best at epoch 0 and never improves again. Lightning's
``save_last`` alone leaves ``last.ckpt`` at the last *best* save; here it must hold the last epoch.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from affectlab.experiments.cli import main
from conftest import REPO

DEMO = str(REPO / "experiments" / "baseline" / "demo.yaml")


class StopsImproving(L.Callback):
    """Logs ``val/fake``: 1.0 at epoch 0, then 0.0 (a metric that never improves after the first epoch)."""

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            pl_module.log("val/fake", 1.0 if trainer.current_epoch == 0 else 0.0)


def test_last_ckpt_holds_the_last_epoch_when_the_metric_stops_improving(fi_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = main(["fit", "-c", DEMO, "--data.init_args.root", str(fi_sample), "--data.init_args.image_size", "32",
                "--data.init_args.num_workers", "0", "--trainer.accelerator", "cpu", "--trainer.logger", "false",
                "--trainer.max_epochs", "3", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
                "--trainer.enable_progress_bar", "false",
                "--trainer.callbacks+=test_last_checkpoint.StopsImproving",
                "--checkpoint.monitor", "val/fake", "--checkpoint.mode", "max"])
    folder = Path(cli.trainer.default_root_dir) / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["best-epoch000.ckpt", "last.ckpt"]
    best = torch.load(folder / "best-epoch000.ckpt", weights_only=True, map_location="cpu")
    last = torch.load(folder / "last.ckpt", weights_only=True, map_location="cpu")
    assert best["epoch"] == 0 and best["global_step"] == 2
    assert last["epoch"] == 2 and last["global_step"] == 6  # three epochs of two steps
    for key, value in cli.model.state_dict().items():  # the weights the run ended with
        torch.testing.assert_close(last["state_dict"][key], value, msg=key)
