"""The right model or a clear refusal.

Trials: ``test``/``predict`` without ``--ckpt_path`` refuse (the weights would be untrained) unless
``--no_checkpoint true`` says so; a baseline checkpoint given with the MDAN config fails with one
line naming both classes, before any model is built.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from affectlab.experiments.cli import main
from conftest import REPO

BASELINE = str(REPO / "experiments" / "baseline" / "demo.yaml")
MDAN = str(REPO / "experiments" / "mdan" / "demo.yaml")


def data(root: Path) -> list[str]:
    return ["--data.init_args.root", str(root), "--data.init_args.image_size", "32",
            "--data.init_args.num_workers", "0", "--trainer.accelerator", "cpu", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false"]


@pytest.mark.parametrize("subcommand", ["test", "predict", "validate"])
def test_an_evaluation_without_a_checkpoint_refuses(subcommand, fi_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as refused:
        main([subcommand, "-c", BASELINE, *data(fi_sample)])
    message = str(refused.value.code)
    assert "--ckpt_path" in message and "--no_checkpoint" in message and "\n" not in message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("config.yaml"))


def test_an_evaluation_of_the_built_model_runs_when_asked(fi_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = main(["test", "-c", BASELINE, *data(fi_sample), "--no_checkpoint", "true",
                "--trainer.limit_test_batches", "1"])
    assert cli.trainer.state.finished


def test_a_checkpoint_of_another_class_fails_in_one_line_naming_both(fi_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit = main(["fit", "-c", BASELINE, *data(fi_sample), "--trainer.max_epochs", "1",
                "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1"])
    ckpt = str(Path(fit.trainer.default_root_dir) / "checkpoints" / "last.ckpt")
    for subcommand in ("test", "predict", "fit"):
        with pytest.raises(SystemExit) as refused:
            main([subcommand, "-c", MDAN, *data(fi_sample), "--ckpt_path", ckpt])
        message = str(refused.value.code)
        assert "\n" not in message, message
        assert "affectlab.modules.classifier.EmotionClassifier" in message, message
        assert "affectlab.modules.mdan.MDAN" in message, message
    # The right config with the same checkpoint is accepted.
    cli = main(["test", "-c", BASELINE, *data(fi_sample), "--ckpt_path", ckpt, "--trainer.limit_test_batches", "1"])
    assert type(cli.model).__name__ == "EmotionClassifier" and cli.trainer.state.finished
