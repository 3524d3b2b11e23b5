"""The CLI end to end: run folders, offline W&B, predictions, exact resume, DDP and torchrun."""

from __future__ import annotations

import csv
import json
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest
import torch

from affectlab.experiments.cli import main
from conftest import REPO, run_cli

DEMO = str(REPO / "experiments" / "baseline" / "demo.yaml")


def tiny(root: Path, *extra: str) -> list[str]:
    return ["-c", DEMO, "--data.init_args.root", str(root), "--data.init_args.image_size", "32",
            "--data.init_args.num_workers", "0", "--trainer.accelerator", "cpu", *extra]


def test_fit_writes_run_folder_with_config_checkpoints_and_offline_wandb(fi_sample, tmp_path, monkeypatch):
    attempts = []
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if sock.family in (socket.AF_INET, socket.AF_INET6) else "127.0.0.1"
        if not (host.startswith("127.") or host in ("localhost", "::1")):
            attempts.append(address)
            raise OSError("network access attempted in an offline test")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.chdir(tmp_path)
    cli = main(["fit", *tiny(fi_sample, "--trainer.max_epochs", "1", "--name", "smoke")])
    run = Path(cli.trainer.default_root_dir)
    assert run.parent.name == "smoke" and run.parent.parent == tmp_path / "runs"
    assert (run / "config.yaml").exists() and "seed_everything: 0" in (run / "config.yaml").read_text()
    assert (run / "checkpoints" / "last.ckpt").exists()
    assert list((run / "media").glob("val_confusion_matrix_e000.png"))
    cli.trainer.loggers[0].experiment.finish()
    # wandb-core writes the offline record in its own process: give it a moment to land.
    deadline, logged = time.monotonic() + 20, b""
    while time.monotonic() < deadline and not (b"val/acc" in logged and b"train/loss" in logged):
        offline = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
        logged = offline[0].read_bytes() if offline else b""
        time.sleep(0.2)
    assert offline, list(run.rglob("*"))
    assert b"val/acc" in logged and b"train/loss" in logged
    assert not attempts, attempts


def test_predict_writes_predictions_csv_with_every_level(fi_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit = main(["fit", *tiny(fi_sample, "--trainer.max_epochs", "1", "--trainer.logger", "false")])
    ckpt = fit.trainer.checkpoint_callback.last_model_path
    predict = main(["predict", *tiny(fi_sample, "--trainer.logger", "false"), "--ckpt_path", ckpt])
    path = Path(predict.trainer.default_root_dir) / "predictions.csv"
    run = Path(ckpt).parent.parent
    assert path.parent.parent == run.parent and path.parent.name.startswith(f"{run.name}.predict-")  # beside the run
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == len(predict.datamodule.splits["test"])
    row = rows[0]
    assert row["pred_sentiment"] in ("negative", "positive") and row["pred_emotion"] in predict.model.taxonomy.leaves
    assert abs(sum(float(row[f"p_emotion_{c}"]) for c in predict.model.taxonomy.leaves) - 1) < 1e-4


def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(fi_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = tiny(fi_sample, "--trainer.logger", "false", "--trainer.deterministic", "true",
                  "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1")
    straight = main(["fit", *common, "--trainer.max_epochs", "2", "--name", "straight"])
    first = main(["fit", *common, "--trainer.max_epochs", "1", "--name", "interrupted"])
    last = first.trainer.checkpoint_callback.last_model_path
    resumed = main(["fit", *common, "--trainer.max_epochs", "2", "--ckpt_path", last])
    assert Path(resumed.trainer.default_root_dir) == Path(first.trainer.default_root_dir)
    assert resumed.trainer.current_epoch == straight.trainer.current_epoch == 2
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)


def _ddp_indices(folder: Path) -> list[list[int]]:
    ranks = [json.loads((folder / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks) and ranks[0]["pid"] != ranks[1]["pid"]
    return [r["indices"] for r in ranks]


def test_console_script_trains_with_ddp_on_two_cpu_processes(fi_sample, tmp_path):
    script = shutil.which("affectlab", path=str(Path(sys.executable).parent))
    assert script, "the affectlab console script is not installed"
    record = tmp_path / "record"
    run_cli(["fit", *tiny(fi_sample, "--trainer.devices", "2", "--trainer.strategy", "ddp",
                          "--trainer.max_epochs", "1", "--trainer.logger", "false",
                          "--trainer.callbacks+=_record.RecordIndices", f"--trainer.callbacks.folder={record}")],
            cwd=tmp_path, launcher=[script], timeout=300)
    rank0, rank1 = _ddp_indices(record)
    assert rank0 and rank1 and not set(rank0) & set(rank1)


@pytest.mark.slow
def test_torchrun_launch_trains_on_two_cpu_processes(fi_sample, tmp_path):
    record = tmp_path / "record"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "affectlab.experiments"]
    run_cli(["fit", *tiny(fi_sample, "--trainer.devices", "2", "--trainer.strategy", "ddp",
                          "--trainer.max_epochs", "1", "--trainer.logger", "false",
                          "--trainer.callbacks+=_record.RecordIndices", f"--trainer.callbacks.folder={record}")],
            cwd=tmp_path, launcher=launcher, timeout=300)
    rank0, rank1 = _ddp_indices(record)
    assert rank0 and rank1 and not set(rank0) & set(rank1)
