"""Scale-out: ``experiments/slurm/torchrun.sh`` launches DDP with torchrun; on the CPU it trains one run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_cli


@pytest.mark.slow
def test_torchrun_script_trains_two_processes_into_one_run_folder_on_the_cpu(fi_sample, tmp_path):
    launcher = ["bash", "experiments/slurm/torchrun.sh", "2", "experiments/baseline/demo.yaml"]
    run_cli(["-c", "experiments/defaults/ddp_cpu.yaml", "--trainer.sync_batchnorm", "false",
             "--data.init_args.root", str(fi_sample), "--data.init_args.num_workers", "0",
             "--data.init_args.batch_size", "4", "--data.init_args.image_size", "32",
             "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2", "--trainer.max_epochs", "1",
             "--trainer.enable_progress_bar", "false", "--trainer.callbacks+=affectlab.callbacks.metrics_file.MetricsFile"],
            cwd=REPO, launcher=launcher, OMP_NUM_THREADS="1", WANDB_MODE="disabled",
            PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))

    # Both ranks share one run folder, named by torchrun's rendezvous id.
    runs = list((tmp_path / "runs" / "baseline-demo").iterdir())
    assert len(runs) == 1, runs
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    assert len(metrics["history"]) == 1 and 0.0 <= metrics["history"][0]["val/acc"] <= 1.0
    assert list((runs[0] / "checkpoints").glob("best-*.ckpt"))
