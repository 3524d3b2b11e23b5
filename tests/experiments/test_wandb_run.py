"""The W&B run holds the experiment: the whole resolved config, tags, group, job type, checkpoints.

Offline, after a tiny fit: the run's config, tags, group and job type as the W&B run holds them,
the checkpoints the logger logged as artifacts, and the config's keys and the metrics in the
offline run's transaction log, which ``wandb sync`` uploads.
"""

from __future__ import annotations

from pathlib import Path

import wandb

from affectlab.experiments.cli import main
from conftest import REPO

DEMO = str(REPO / "experiments" / "baseline" / "demo.yaml")
EARLY = str(REPO / "experiments" / "defaults" / "early_stopping.yaml")


def test_the_wandb_run_holds_the_resolved_config_and_the_checkpoints(fi_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = main(["fit", "-c", DEMO, "-c", EARLY, "--data.init_args.root", str(fi_sample),
                "--data.init_args.image_size", "32", "--data.init_args.num_workers", "0",
                "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false",
                "--trainer.log_every_n_steps", "1",
                # log_model needs the logger online; WANDB_MODE=offline (set for every test) keeps it local.
                "--trainer.logger.init_args.log_model", "true", "--trainer.logger.init_args.offline", "false",
                "--name", "logged"])
    logger = cli.trainer.loggers[0]
    run = logger.experiment
    try:
        assert run.group == "logged" and run.job_type == "fit" and set(run.tags) == {"emotionclassifier", "fi"}
        # log_model: the best and the last checkpoint went to W&B as artifacts.
        assert {Path(p).name for p in logger._logged_model_time} == {"last.ckpt", "best-epoch000.ckpt"}
        config = dict(run.config)
        assert config["seed_everything"] == 0
        assert config["trainer"]["max_epochs"] == 1 and config["trainer"]["precision"] == "32-true"
        callbacks = [c["class_path"] for c in config["trainer"]["callbacks"]]
        assert callbacks[-1] == "lightning.pytorch.callbacks.EarlyStopping"  # the preset's callback
        assert config["checkpoint"]["monitor"] == "val/acc"
        assert config["run_dir"] == cli.trainer.default_root_dir
        assert config["model"]["init_args"]["optimizer"]["class_path"] == "torch.optim.AdamW"
        used = [Path(p).name for p in config["config_files"]]
        assert used[-2:] == ["demo.yaml", "early_stopping.yaml"] and "baseline_demo.yaml" in used  # with its parts
    finally:
        run.finish()  # a run left open would be reused by the next test's logger
        wandb.teardown()  # and the service that uploaded artifacts starts afresh for the next run

    # What the offline run holds on disk for `wandb sync`: the config's keys, the summary's metrics.
    (log,) = list((Path(cli.trainer.default_root_dir) / "wandb").glob("offline-run-*/run-*.wandb"))
    logged = log.read_bytes()
    for key in (b"config_files", b"seed_everything", b"early_stopping.yaml", b"emotionclassifier",
                b"val/acc", b"train/loss"):
        assert key in logged, key
