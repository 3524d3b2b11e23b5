"""Run folders never collide, a saved config reruns as a new run, evaluations write beside the run.

Trials: two launches that draw the same date-time id (the same second) get two folders; a rerun of
a saved ``config.yaml`` trains into a new folder and leaves the old one byte for byte; a resume
with ``--ckpt_path`` continues the old folder and keeps its first config; ``test`` and ``predict``
of a run's checkpoint write their config, metrics and ``predictions.csv`` to their own folders
beside the run's, and the run's ``config.yaml`` still fits.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import affectlab.experiments.cli as cli
from affectlab.experiments.cli import main
from conftest import REPO

DEMO = str(REPO / "experiments" / "baseline" / "demo.yaml")


def tiny(root: Path, *extra: str) -> list[str]:
    return ["-c", DEMO, "--data.init_args.root", str(root), "--data.init_args.image_size", "32",
            "--data.init_args.num_workers", "0", "--trainer.accelerator", "cpu", "--trainer.logger", "false",
            "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
            "--trainer.enable_progress_bar", "false", *extra]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_launches_in_the_same_second_get_two_folders(fi_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ids = iter(["20260101-000000-aaaaaa"] * 2 + ["20260101-000000-bbbbbb"])
    monkeypatch.setattr(cli, "new_run_id", lambda: next(ids))
    first = main([*tiny(fi_sample, "--name", "same")], run=False)  # parsed and built, not trained
    second = main([*tiny(fi_sample, "--name", "same")], run=False)
    a, b = Path(first.trainer.default_root_dir), Path(second.trainer.default_root_dir)
    assert a.name == "20260101-000000-aaaaaa" and b.name == "20260101-000000-bbbbbb"
    # Everything the second run writes follows its own folder.
    assert second.trainer.checkpoint_callback.dirpath == str(b / "checkpoints")
    assert second.config["run_dir"] == str(b)


def test_a_rerun_of_a_saved_config_is_a_new_run_and_a_resume_continues_the_old(fi_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = main(["fit", *tiny(fi_sample, "--trainer.max_epochs", "1", "--name", "rerun")])
    run = Path(first.trainer.default_root_dir)
    before = _snapshot(run)
    assert "config.yaml" in before and "checkpoints/last.ckpt" in before

    again = main(["fit", "-c", str(run / "config.yaml")])
    rerun = Path(again.trainer.default_root_dir)
    assert rerun != run and rerun.parent == run.parent  # the same experiment, a new run
    assert (rerun / "checkpoints" / "last.ckpt").exists()
    assert _snapshot(run) == before  # nothing of the old run was touched

    resumed = main(["fit", "-c", str(run / "config.yaml"), "--trainer.max_epochs", "2",
                    "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    assert Path(resumed.trainer.default_root_dir) == run and resumed.trainer.current_epoch == 2
    assert (run / "config.yaml").read_bytes() == before["config.yaml"]  # the first config stays
    assert list(run.glob("config.resume-*.yaml"))


def test_test_and_predict_write_beside_the_run_never_over_it(fi_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit = main(["fit", *tiny(fi_sample, "--trainer.max_epochs", "1", "--name", "evaluated")])
    run = Path(fit.trainer.default_root_dir)
    before = _snapshot(run)
    ckpt = str(run / "checkpoints" / "last.ckpt")

    test = main(["test", *tiny(fi_sample), "--ckpt_path", ckpt])
    out = Path(test.trainer.default_root_dir)
    assert out.parent == run.parent and out.name.startswith(f"{run.name}.test-")
    assert (out / "config.yaml").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test/acc"] <= 1.0

    predict = main(["predict", *tiny(fi_sample), "--ckpt_path", ckpt])
    out = Path(predict.trainer.default_root_dir)
    assert out.name.startswith(f"{run.name}.predict-") and (out / "predictions.csv").exists()
    assert _snapshot(run) == before  # config.yaml, checkpoints: untouched

    # The run's own config still parses for fit (no evaluation-only keys were written into it).
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", str(run / "config.yaml"), "--print_config"])
    assert exit_info.value.code == 0


@pytest.mark.slow
def test_two_processes_started_together_keep_their_own_folders(fi_sample, tmp_path):
    import subprocess
    import sys

    from conftest import subprocess_env

    command = [sys.executable, "-m", "affectlab.experiments", "fit",
               *tiny(fi_sample, "--trainer.max_epochs", "1", "--name", "together")]
    env = subprocess_env(AFFECTLAB_RUNS=str(tmp_path / "runs"), OMP_NUM_THREADS="1")
    processes = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for process in processes:
        assert process.wait(timeout=600) == 0, process.stderr.read()
    runs = sorted((tmp_path / "runs" / "together").iterdir())
    assert len(runs) == 2, runs
    for run in runs:
        assert (run / "config.yaml").exists() and (run / "checkpoints" / "last.ckpt").exists()
